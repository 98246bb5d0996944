using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using Trainer.Recipes.Benchmarks;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Storage;

namespace Trainer.Recipes.Sinks;

/// <summary>One row of metrics.csv; <c>rss_mb</c> (the process's resident memory at the epoch's end) and, for runs with a weight average, <c>ema_val_*</c> follow the spec's columns.</summary>
internal sealed record MetricsRow(int Epoch, long Step, double Lr, double TrainLoss, double TrainTop1, double ValLoss, double ValTop1, double ValTop5, double Seconds, double RssMb = 0,
    double? EmaValLoss = null, double? EmaValTop1 = null, double? EmaValTop5 = null);

/// <summary>
/// metrics.csv, one row per epoch. On resume, rows past the checkpoint's epoch (written after the
/// last checkpoint, before a crash) and a torn last line are dropped so every epoch appears once.
/// </summary>
internal sealed class CsvSink(string path) : TrainingSink
{
    static readonly CsvConfiguration Format = new(CultureInfo.InvariantCulture);

    /// <summary>The columns written, in order.</summary>
    sealed class RowMap : ClassMap<MetricsRow>
    {
        /// <param name="withAverage">Write the ema_val_* columns (runs with a weight average only).</param>
        public RowMap(bool withAverage)
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
            Map(r => r.RssMb).Name("rss_mb");
            if (!withAverage) return;
            Map(r => r.EmaValLoss).Name("ema_val_loss");
            Map(r => r.EmaValTop1).Name("ema_val_top1");
            Map(r => r.EmaValTop5).Name("ema_val_top5");
        }
    }

    /// <summary>The rows of a metrics.csv; the optional columns (rss_mb, ema_val_*) may be absent.</summary>
    public static List<MetricsRow> Read(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, Format);
        var rows = new List<MetricsRow>();
        if (!csv.Read()) return rows;
        csv.ReadHeader();
        var header = csv.HeaderRecord ?? [];
        while (csv.Read())
        {
            double Field(string name) => double.Parse(csv.GetField(name)!, CultureInfo.InvariantCulture);
            double? Optional(string name) => header.Contains(name) && csv.GetField(name) is { Length: > 0 } text ? double.Parse(text, CultureInfo.InvariantCulture) : null;
            rows.Add(new MetricsRow(csv.GetField<int>("epoch"), csv.GetField<long>("step"), Field("lr"), Field("train_loss"), Field("train_top1"),
                Field("val_loss"), Field("val_top1"), Field("val_top5"), Field("seconds"), Optional("rss_mb") ?? 0,
                Optional("ema_val_loss"), Optional("ema_val_top1"), Optional("ema_val_top5")));
        }
        return rows;
    }

    bool _withAverage;

    public override void RunStarted(TrainingSession s)
    {
        _withAverage = s.Ema is not null;
        RunFileRepair.TrimCsv(path, "epoch", s.Epoch);
        var kept = File.Exists(path) ? Read(path).Where(r => r.Epoch <= s.Epoch).ToList() : [];
        Write(kept, append: false);
    }

    public override void EpochEnded(TrainingSession s, EpochRecord e)
    {
        var m = e.Metrics;
        Write([new MetricsRow(e.Epoch, e.Step, m["lr"], m["train_loss"], m["train_top1"], m["val_loss"], m["val_top1"], m["val_top5"], Math.Round(e.Seconds, 3), Math.Round(ProcessMemory.ResidentBytes() / 1048576.0, 1),
            Optional(m, "ema_val_loss"), Optional(m, "ema_val_top1"), Optional(m, "ema_val_top5"))], append: true);
    }

    static double? Optional(IReadOnlyDictionary<string, double> m, string key) => m.TryGetValue(key, out var v) ? v : null;

    /// <summary>Appends rows, or replaces the file (header and rows) as a whole; a full disk names metrics.csv.</summary>
    void Write(IEnumerable<MetricsRow> rows, bool append)
    {
        void WriteTo(TextWriter writer)
        {
            using var csv = new CsvWriter(writer, Format with { HasHeaderRecord = !append }, leaveOpen: true);
            csv.Context.RegisterClassMap(new RowMap(_withAverage));
            csv.WriteRecords(rows);
        }
        if (!append)
        {
            DurableFile.Write(path, file =>
            {
                using var writer = new StreamWriter(file, leaveOpen: true);
                WriteTo(writer);
            });
            return;
        }
        DiskFull.Guard(path, () =>
        {
            using var writer = new StreamWriter(path, append: true);
            WriteTo(writer);
        });
    }
}
