using System.Diagnostics;
using Trainer.Recipes.Config;
using Trainer.Recipes.Runs;

namespace Trainer.Recipes.Benchmarks;

/// <summary>Images per second of a training input pipeline alone: read, decode, augment, batch; no model.</summary>
public sealed record PipelineBenchmarkResult(string Data, int Workers, int Batch, int ImageSize, long Images, double Seconds)
{
    public double ImagesPerSecond => Images / Seconds;
}

public static class PipelineBenchmark
{
    /// <summary>
    /// One untimed warm-up epoch (JIT, file cache), then <paramref name="epochs"/> timed epochs of
    /// the training loader with <paramref name="data"/>'s transform (RandomResizedCrop and flip by default).
    /// </summary>
    public static PipelineBenchmarkResult Run(DataConfig data, int batchSize, int epochs = 1)
    {
        var images = DataSources.Load(data, seed: 0);
        var normalization = DataSources.Normalization(data, images.Train);
        var config = new RunConfig { Data = data, Train = new TrainConfig { BatchSize = batchSize } };
        var loader = DataSources.TrainLoader(config, images.Train, normalization);
        foreach (var batch in loader.Epoch(0)) batch.Dispose();
        long count = 0;
        var clock = Stopwatch.StartNew();
        for (int e = 1; e <= epochs; e++)
            foreach (var batch in loader.Epoch(e))
                using (batch) count += batch.Size;
        return new PipelineBenchmarkResult(data.Root.Length > 0 ? data.Root : data.Name, loader.Workers, batchSize, data.ImageSize, count, clock.Elapsed.TotalSeconds);
    }
}
