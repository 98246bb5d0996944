using Trainer.Data.Transforms;
using static TorchSharp.torch;

namespace Trainer.Data.Loading;

/// <summary>
/// One mini-batch on the CPU: inputs (N, C, H, W) float32, or (N, V, C, H, W) for V test views,
/// and class labels (N) int64. The consumer disposes it (and must not keep its tensors after:
/// their memory may go back to the loader for the next batch). In a job of several ranks it is
/// this rank's share of a global batch of <see cref="GlobalSize"/> images (possibly none).
/// A batch for a GPU may instead hold its uint8 pixels, finished (to float, colour, normalised)
/// where they are used: <see cref="ImagesOn"/>.
/// </summary>
internal sealed class Batch : IDisposable
{
    readonly Tensor? _images, _pixels;
    readonly Func<Tensor, Tensor>? _finish;
    readonly Action? _release;
    readonly long _globalSize;

    public Batch(Tensor images, Tensor labels, Action? release = null, long globalSize = -1)
    {
        _images = images;
        Labels = labels;
        _release = release;
        _globalSize = globalSize;
    }

    Batch(Tensor pixels, Func<Tensor, Tensor> finish, Tensor labels, long globalSize)
    {
        _pixels = pixels;
        _finish = finish;
        Labels = labels;
        _globalSize = globalSize;
    }

    /// <summary>A batch of uint8 <paramref name="pixels"/> that <paramref name="finish"/> turns into the network's input on whatever device they are sent to.</summary>
    public static Batch OfPixels(Tensor pixels, Func<Tensor, Tensor> finish, Tensor labels, long globalSize) => new(pixels, finish, labels, globalSize);

    /// <summary>The finished inputs on the CPU (a batch of pixels is finished on the CPU for this).</summary>
    public Tensor Images => _images ?? throw new InvalidOperationException("an unfinished batch: use ImagesOn(device)");

    /// <summary>True when the batch holds uint8 pixels to be finished on the device they go to.</summary>
    public bool Unfinished => _images is null;

    public Tensor Labels { get; }
    public long Size => Labels.shape[0];
    /// <summary>Images in the global batch this one is a share of (its own size in a job of one).</summary>
    public long GlobalSize => _globalSize < 0 ? Size : _globalSize;

    /// <summary>
    /// The inputs on <paramref name="device"/>, a tensor of the caller's: finished batches are
    /// copied, batches of pixels send their bytes and are finished there. From page-locked
    /// memory to a GPU the copy does not block the host.
    /// </summary>
    public Tensor ImagesOn(Device device)
    {
        var source = _images ?? _pixels!;
        bool async = device.type == TorchSharp.DeviceType.CUDA && source.is_pinned();
        if (_images is not null) return _images.to(device, non_blocking: async);
        using var sent = _pixels!.to(device, non_blocking: async);
        return _finish!(sent);
    }

    public void Dispose()
    {
        _images?.Dispose();
        _pixels?.Dispose();
        Labels.Dispose();
        _release?.Invoke();
    }
}

/// <summary>
/// Seeded mini-batches for one epoch at a time. The order and every augmentation draw derive from
/// (seed, epoch, position), so an epoch is the same whether it runs straight, after a resume, or
/// with any number of workers. <c>workers</c> threads build whole batches ahead of the consumer
/// (at most <c>prefetch</c> waiting); batches arrive in order; an exception in a worker surfaces
/// in the consumer at that batch; stopping early (or an exception) stops the workers.
/// With <c>pinMemory</c> (CUDA) batches sit in page-locked memory for non-blocking copies; with
/// <c>finishOnDevice</c> too they hold uint8 pixels, finished on the device (<see cref="Batch.ImagesOn"/>).
/// With <c>ranks</c> &gt; 1 (data-parallel training) <c>batchSize</c> is the global batch and this
/// loader builds only rank <c>rank</c>'s share of each: an even, contiguous slice of the batch one
/// process would build, with the same augmentation draws, so step k trains on the same images
/// whatever the number of ranks.
/// </summary>
internal sealed class BatchLoader(ISampleSource source, int batchSize, bool shuffle, ulong seed,
    int workers = 1, int prefetch = 2, bool dropLast = false, bool pinMemory = false, int rank = 0, int ranks = 1, bool finishOnDevice = false)
{
    public ISampleSource Source { get; } = source;
    public ILabelledImages Data => Source.Images;
    public int BatchSize { get; } = batchSize;
    public int Workers { get; } = Math.Max(1, workers);

    // Output memory of full-size interleaved batches, reused once their consumer has disposed them.
    readonly System.Collections.Concurrent.ConcurrentBag<Tensor> _freeOutputs = new();

    public int BatchesPerEpoch => dropLast ? Data.Count / BatchSize : (Data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The sample order of an epoch.</summary>
    public int[] Order(int epoch) =>
        shuffle ? new Rng(seed, (ulong)epoch, 0x0DE7).Permutation(Data.Count) : Enumerable.Range(0, Data.Count).ToArray();

    /// <summary>Builds batch <paramref name="batchIndex"/> of <paramref name="epoch"/> on the calling thread.</summary>
    public Batch MakeBatch(int epoch, int batchIndex, int[] order)
    {
        int start = batchIndex * BatchSize, total = Math.Min(BatchSize, Data.Count - start);
        (int first, int n) = Share(total);
        if (n == 0) return new Batch(empty(0), tensor(Array.Empty<long>(), [0]), null, total);
        start += first;
        var layout = Source.Layout;
        // A pooled buffer: the finished tensor is a copy, and fresh 10-100 MB arrays each batch would keep the GC busy.
        int bytes = n * layout.BytesPerSample;
        var pixels = System.Buffers.ArrayPool<byte>.Shared.Rent(bytes);
        var labels = new long[n];
        var colors = new ColorDraw[n];
        Tensor images;
        // Large interleaved batches reuse output memory; pinned (CUDA) batches are copies anyway.
        Tensor? output = layout.Interleaved && !pinMemory && !finishOnDevice && n == Share(BatchSize).Count ? TakeOutput(n, layout) : null;
        try
        {
            for (int i = 0; i < n; i++)
            {
                int sample = order[start + i];
                var rng = new Rng(seed, (ulong)epoch, (ulong)(start + i), 0xA06);
                Source.Write(sample, pixels.AsSpan(i * layout.BytesPerSample, layout.BytesPerSample), ref rng, out colors[i]);
                labels[i] = Data.Label(sample);
            }
            if (finishOnDevice)
            {
                // The bytes, copied out of the pooled buffer (into page-locked memory for a GPU).
                using var bytesView = frombuffer(pixels, ScalarType.Byte, count: bytes);
                var kept = pinMemory ? bytesView.pin_memory() : bytesView.clone();
                var finish = Source.Finish;
                return Batch.OfPixels(kept, sent => finish.Apply(sent, n, layout, colors), tensor(labels, [n]), total);
            }
            images = Source.Finish.Apply(pixels, n, layout, colors, output);
        }
        catch
        {
            if (output is not null) _freeOutputs.Add(output);
            throw;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(pixels);
        }
        if (pinMemory)
        {
            var pinned = images.pin_memory();
            images.Dispose();
            images = pinned;
        }
        return new Batch(images, tensor(labels, [n]), output is null ? null : () => _freeOutputs.Add(output), total);
    }

    /// <summary>This rank's slice of a global batch of <paramref name="total"/> images: its offset in the batch and its length.</summary>
    (int First, int Count) Share(int total)
    {
        int first = (int)((long)total * rank / ranks);
        return (first, (int)((long)total * (rank + 1) / ranks) - first);
    }

    Tensor TakeOutput(int n, SampleLayout layout) =>
        _freeOutputs.TryTake(out var free) ? free : empty((long)n * layout.Views, layout.Height, layout.Width, 3);

    /// <summary>The batches of one epoch, from <paramref name="firstBatch"/> on, prepared ahead by the workers.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        var order = Order(epoch);
        int count = BatchesPerEpoch - firstBatch;
        if (count <= 0) yield break;
        var results = new TaskCompletionSource<Batch>[count];
        for (int i = 0; i < count; i++) results[i] = new TaskCompletionSource<Batch>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cancel = new CancellationTokenSource();
        // Slots bound how far the workers run ahead of the consumer.
        using var slots = new SemaphoreSlim(Math.Max(1, prefetch) + Workers - 1);
        int next = -1, handedOver = 0;
        void Work()
        {
            // Each worker's own tensor work runs on its thread alone: two workers then use two
            // cores without fighting over libtorch's intra-op pool (OpenMP settings are per thread).
            set_num_threads(1);
            while (true)
            {
                try { slots.Wait(cancel.Token); }
                catch (OperationCanceledException) { return; }
                int b = Interlocked.Increment(ref next);
                if (b >= count || cancel.IsCancellationRequested) return;
                try { results[b].SetResult(MakeBatch(epoch, firstBatch + b, order)); }
                catch (Exception e) { results[b].SetException(e); }
            }
        }
        var threads = Enumerable.Range(0, Workers).Select(i => new Thread(Work) { IsBackground = true, Name = $"loader-{i}" }).ToArray();
        int mainThreads = get_num_threads();
        foreach (var t in threads) t.Start();
        try
        {
            for (int b = 0; b < count; b++)
            {
                var batch = results[b].Task.GetAwaiter().GetResult();
                slots.Release();
                handedOver = b + 1;
                yield return batch;
            }
        }
        finally
        {
            // An early stop or an error: stop the workers and free what they had prepared.
            cancel.Cancel();
            foreach (var t in threads) t.Join();
            set_num_threads(mainThreads);   // the setting also seeds threads started later
            for (int b = handedOver; b < count; b++)
                if (results[b].Task.IsCompletedSuccessfully) results[b].Task.Result.Dispose();
        }
    }
}
