using TorchSharp.Modules;
using Trainer.Recipes.Engine;
using Trainer.Recipes.Storage;
using static TorchSharp.torch;

namespace Trainer.Recipes.Sinks;

/// <summary>
/// TensorBoard event files through TorchSharp's SummaryWriter: per epoch the scalars train/loss,
/// train/top1, val/loss, val/top1, val/top5 and lr (step = epoch), weight histograms, and once a
/// grid of augmented training images. A resumed run adds a new event file in the same folder,
/// which TensorBoard reads as one run, after cutting a torn last record off the earlier ones.
/// </summary>
internal sealed class TensorBoardSink(string logDir, Func<Tensor>? sampleImages) : TrainingSink
{
    const string EventFiles = "events.out.tfevents.*";
    SummaryWriter? _writer;
    /// <summary>This run's event file (for messages), once the writer made it; the folder until then.</summary>
    string? _eventFile;
    string EventFile => _eventFile ?? logDir;

    public override void RunStarted(TrainingSession s)
    {
        // A crash can leave the previous event files with a torn last record; cut it so they stay readable.
        var earlier = Directory.Exists(logDir) ? Directory.GetFiles(logDir, EventFiles) : [];
        foreach (var file in earlier) RunFileRepair.TrimEventFile(file);
        DiskFull.Guard(EventFile, () => _writer = utils.tensorboard.SummaryWriter(logDir));
        _eventFile = Directory.GetFiles(logDir, EventFiles).Except(earlier).FirstOrDefault();
        if (s.Config.Log.ImageGrid && sampleImages is not null && s.Step == 0)
        {
            using var images = sampleImages();
            using var grid = ImageGrid.Make(images, columns: 8);
            DiskFull.Guard(EventFile, () => _writer!.add_img("train/augmented_batch", grid, 0, WallTime()));
        }
    }

    public override void EpochEnded(TrainingSession s, EpochRecord e) => DiskFull.Guard(EventFile, () => Log(s, e));

    void Log(TrainingSession s, EpochRecord e)
    {
        var w = _writer!;
        var m = e.Metrics;
        long wall = WallTime();
        w.add_scalar("train/loss", (float)m["train_loss"], e.Epoch, wall);
        w.add_scalar("train/top1", (float)m["train_top1"], e.Epoch, wall);
        w.add_scalar("val/loss", (float)m["val_loss"], e.Epoch, wall);
        w.add_scalar("val/top1", (float)m["val_top1"], e.Epoch, wall);
        w.add_scalar("val/top5", (float)m["val_top5"], e.Epoch, wall);
        w.add_scalar("lr", (float)m["lr"], e.Epoch, wall);
        if (m.TryGetValue("ema_val_top1", out var emaTop1))
        {
            w.add_scalar("val_ema/loss", (float)m["ema_val_loss"], e.Epoch, wall);
            w.add_scalar("val_ema/top1", (float)emaTop1, e.Epoch, wall);
            w.add_scalar("val_ema/top5", (float)m["ema_val_top5"], e.Epoch, wall);
        }
        if (s.Config.Log.Histograms)
        {
            foreach (var (name, p) in s.Model.named_parameters())
            {
                using var values = p.detach().cpu();
                w.add_histogram("weights/" + name, values, e.Epoch, walltime: wall);
            }
        }
    }

    /// <summary>One scalar at a step (for other sinks that log through this writer).</summary>
    public void Scalar(string tag, double value, long step) => DiskFull.Guard(EventFile, () => _writer?.add_scalar(tag, (float)value, (int)step, WallTime()));

    // Unix seconds, as PyTorch's writer records them.
    static long WallTime() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}

/// <summary>Tiles a batch (N, C, H, W) of images in [0, 1] into one (C, H', W') grid with 2-pixel gaps, like torchvision's make_grid.</summary>
internal static class ImageGrid
{
    public static Tensor Make(Tensor images, int columns, int gap = 2)
    {
        using var scope = NewDisposeScope();
        long n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3];
        long cols = Math.Min(columns, n), rows = (n + cols - 1) / cols;
        var grid = zeros(c, rows * (h + gap) + gap, cols * (w + gap) + gap);
        for (long i = 0; i < n; i++)
        {
            long r = i / cols, col = i % cols;
            long top = gap + r * (h + gap), left = gap + col * (w + gap);
            grid[.., TensorIndex.Slice(top, top + h), TensorIndex.Slice(left, left + w)] = images[i];
        }
        return grid.MoveToOuterDisposeScope();
    }
}
