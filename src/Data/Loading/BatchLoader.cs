using System.Collections.Concurrent;
using Trainer.Data.Transforms;
using static TorchSharp.torch;

namespace Trainer.Data.Loading;

/// <summary>One mini-batch on the CPU: inputs (N, C, H, W) float32 and class labels (N) int64. The consumer disposes it.</summary>
public sealed class Batch(Tensor images, Tensor labels) : IDisposable
{
    public Tensor Images { get; } = images;
    public Tensor Labels { get; } = labels;
    public long Size => Labels.shape[0];

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Seeded mini-batches for one epoch at a time. The order and every augmentation draw derive from
/// (seed, epoch, position), so an epoch is the same whether it runs straight or after a resume.
/// A background task prepares the next batches while the current one trains.
/// </summary>
public sealed class BatchLoader(ImageDataset data, CifarAugmentation transform, int batchSize, bool shuffle, ulong seed, int prefetch = 2)
{
    public ImageDataset Data { get; } = data;
    public int BatchSize { get; } = batchSize;
    public int BatchesPerEpoch => (Data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The sample order of an epoch.</summary>
    public int[] Order(int epoch) =>
        shuffle ? new Rng(seed, (ulong)epoch, 0x0DE7).Permutation(Data.Count) : Enumerable.Range(0, Data.Count).ToArray();

    /// <summary>Builds batch <paramref name="batchIndex"/> of <paramref name="epoch"/> on the calling thread.</summary>
    public Batch MakeBatch(int epoch, int batchIndex, int[] order)
    {
        int start = batchIndex * BatchSize, n = Math.Min(BatchSize, Data.Count - start);
        int size = Data.ImageSize;
        var inputs = new float[n * size];
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            int sample = order[start + i];
            var rng = new Rng(seed, (ulong)epoch, (ulong)(start + i), 0xA06);
            transform.Apply(Data, sample, inputs.AsSpan(i * size, size), ref rng);
            labels[i] = Data.Labels[sample];
        }
        return new Batch(tensor(inputs, [n, Data.Channels, Data.Height, Data.Width]), tensor(labels, [n]));
    }

    /// <summary>The batches of one epoch, from <paramref name="firstBatch"/> on, prepared ahead on a worker.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        var order = Order(epoch);
        using var queue = new BlockingCollection<Batch>(Math.Max(1, prefetch));
        using var cancel = new CancellationTokenSource();
        var producer = Task.Run(() =>
        {
            try
            {
                for (int b = firstBatch; b < BatchesPerEpoch && !cancel.IsCancellationRequested; b++)
                    queue.Add(MakeBatch(epoch, b, order), cancel.Token);
            }
            catch (OperationCanceledException) { }
            finally { queue.CompleteAdding(); }
        });
        try
        {
            foreach (var batch in queue.GetConsumingEnumerable())
                yield return batch;
        }
        finally
        {
            // An early stop by the consumer: stop the worker and free what it had prepared.
            cancel.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
            while (queue.TryTake(out var left)) left.Dispose();
        }
        producer.GetAwaiter().GetResult();
    }
}
