using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using Trainer.Recipes.Benchmarks;
using Trainer.Recipes.Engine;

namespace Trainer.Recipes.Sinks;

/// <summary>One row of metrics.csv.</summary>
/// <summary>One row of metrics.csv; <c>rss_mb</c> (the process's resident memory at the epoch's end) follows the spec's columns.</summary>
public sealed record MetricsRow(int Epoch, long Step, double Lr, double TrainLoss, double TrainTop1, double ValLoss, double ValTop1, double ValTop5, double Seconds, double RssMb = 0);

/// <summary>
/// metrics.csv, one row per epoch. On resume, rows past the checkpoint's epoch (written after the
/// last checkpoint, before a crash) are dropped so every epoch appears once.
/// </summary>
public sealed class CsvSink(string path) : TrainingSink
{
    // Reading matches snake_case headers to the record's constructor parameters (train_loss -> TrainLoss).
    static readonly CsvConfiguration Format = new(CultureInfo.InvariantCulture) { PrepareHeaderForMatch = a => a.Header.Replace("_", "").ToLowerInvariant() };

    public sealed class RowMap : ClassMap<MetricsRow>
    {
        public RowMap()
        {
            Map(r => r.Epoch).Name("epoch");
            Map(r => r.Step).Name("step");
            Map(r => r.Lr).Name("lr");
            Map(r => r.TrainLoss).Name("train_loss");
            Map(r => r.TrainTop1).Name("train_top1");
            Map(r => r.ValLoss).Name("val_loss");
            Map(r => r.ValTop1).Name("val_top1");
            Map(r => r.ValTop5).Name("val_top5");
            Map(r => r.Seconds).Name("seconds");
            Map(r => r.RssMb).Name("rss_mb").Optional();
        }
    }

    public static List<MetricsRow> Read(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, Format);
        return csv.GetRecords<MetricsRow>().ToList();
    }

    public override void RunStarted(TrainingSession s)
    {
        var kept = File.Exists(path) ? Read(path).Where(r => r.Epoch <= s.Epoch).ToList() : [];
        Write(kept, append: false);
    }

    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        var m = e.Metrics;
        Write([new MetricsRow(e.Epoch, e.Step, m["lr"], m["train_loss"], m["train_top1"], m["val_loss"], m["val_top1"], m["val_top5"], Math.Round(e.Seconds, 3), Math.Round(ProcessMemory.ResidentBytes() / 1048576.0, 1))], append: true);
    }

    void Write(IEnumerable<MetricsRow> rows, bool append)
    {
        using var writer = new StreamWriter(path, append);
        using var csv = new CsvWriter(writer, Format with { HasHeaderRecord = !append });
        csv.Context.RegisterClassMap<RowMap>();
        csv.WriteRecords(rows);
    }
}
