using System.Security.Cryptography;
using static TorchSharp.torch;

namespace Trainer.Recipes.Distributed;

/// <summary>Keeps the ranks' copies of a model the same: rank 0's weights and buffers sent to all, and a check that they agree.</summary>
internal static class ModelSync
{
    /// <summary>Every parameter and buffer of <paramref name="model"/> becomes rank 0's.</summary>
    public static void BroadcastState(ICollective collective, nn.Module model)
    {
        if (collective.Size == 1) return;
        foreach (var (_, p) in model.named_parameters()) Broadcast(collective, p);
        BroadcastBuffers(collective, model);
    }

    /// <summary>
    /// The buffers (BatchNorm's running statistics) become rank 0's. Each rank normalises its own
    /// share of a batch during training, so their running statistics drift apart; evaluation and the
    /// checkpoint (written by rank 0) use rank 0's, as DDP broadcasts rank 0's buffers.
    /// </summary>
    public static void BroadcastBuffers(ICollective collective, nn.Module model)
    {
        if (collective.Size == 1) return;
        foreach (var (_, b) in model.named_buffers()) Broadcast(collective, b);
    }

    static void Broadcast(ICollective collective, Tensor t)
    {
        using var _ = no_grad();
        if (t.device.type == TorchSharp.DeviceType.CPU && t.is_contiguous())
        {
            collective.Broadcast(t);
            return;
        }
        using var scope = NewDisposeScope();
        var host = t.to(TorchSharp.DeviceType.CPU).contiguous().clone();
        collective.Broadcast(host);
        t.copy_(host);
    }

    /// <summary>The number of ranks whose parameters differ bit for bit from rank 0's (0 when all agree).</summary>
    public static int RanksDiffering(ICollective collective, nn.Module model)
    {
        if (collective.Size == 1) return 0;
        var digest = Digest(model);
        using var mine = tensor(digest.Select(b => (float)b).ToArray());
        using var rootDigest = mine.clone();
        collective.Broadcast(rootDigest);
        bool same = mine.data<float>().SequenceEqual(rootDigest.data<float>());
        Span<double> differs = [same ? 0 : 1];
        collective.SumInPlace(differs);
        return (int)differs[0];
    }

    /// <summary>SHA-256 of every parameter's bytes, in order.</summary>
    static byte[] Digest(nn.Module model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var scope = NewDisposeScope();
        foreach (var (_, p) in model.named_parameters())
        {
            var host = p.detach().to(TorchSharp.DeviceType.CPU).contiguous();
            hash.AppendData(host.bytes);
        }
        return hash.GetHashAndReset();
    }
}
