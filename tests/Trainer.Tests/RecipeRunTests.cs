using Trainer.Recipes.Checkpoints;
using Trainer.Recipes.Sinks;
using Xunit;

namespace Trainer.Tests;

/// <summary>A run with every recipe ingredient at once (RMSprop, clipping, warmup + cosine, label smoothing, mixup/CutMix, EMA) resumes exactly.</summary>
public class RecipeRunTests
{
    static readonly string[] Settings =
    [
        "data.subset=128", "train.batch_size=32", "seed=3", "log.histograms=false", "log.image_grid=false",
        "optimizer.name=rmsprop", "optimizer.lr=0.01", "optimizer.alpha=0.9", "optimizer.eps=0.001", "optimizer.tf_style=true", "optimizer.clip_grad_norm=1.0",
        "schedule.name=cosine", "schedule.warmup_epochs=0.5", "schedule.warmup_lr=0.001",
        "regularization.label_smoothing=0.1", "regularization.mixup_alpha=0.2", "regularization.cutmix_alpha=1.0", "regularization.ema_decay=0.99",
    ];

    static string[] Args(string folder, int epochs, bool resume = false) =>
        ["train", "--out", folder, .. resume ? new[] { "--resume" } : [], "--set", $"train.epochs={epochs}",
         .. resume ? [] : Settings.SelectMany(s => new[] { "--set", s })];

    [Fact]
    public void A_run_with_rmsprop_cosine_mixing_and_ema_resumes_bit_identically()
    {
        using var dir = new TempDir();
        var straight = Cli.Run(Args(dir["straight"], 2));
        Assert.True(straight.ExitCode == 0, straight.Error);
        Assert.Contains("ema top1", straight.Output);
        var first = Cli.Run(Args(dir["resumed"], 1));
        Assert.True(first.ExitCode == 0, first.Error);
        var second = Cli.Run(["train", "--out", dir["resumed"], "--resume", "--set", "train.epochs=2"]);
        Assert.True(second.ExitCode == 0, second.Error);

        using var a = Checkpoint.Load(dir["straight/checkpoints/last.ckpt"]);
        using var b = Checkpoint.Load(dir["resumed/checkpoints/last.ckpt"]);
        Assert.NotNull(a.Ema);
        Assert.Equal(a.Meta.EmaUpdates, b.Meta.EmaUpdates);
        Assert.Equal(8, a.Meta.EmaUpdates);
        Assert.Equal(256, a.Meta.ImagesSeen);
        foreach (var (name, t) in a.Model) Assert.True(t.eq(b.Model[name]).all().item<bool>(), $"model tensor {name} differs after resume");
        foreach (var (name, t) in a.Optimizer) Assert.True(t.eq(b.Optimizer[name]).all().item<bool>(), $"optimizer state {name} differs after resume");
        foreach (var (name, t) in a.Ema!) Assert.True(t.eq(b.Ema![name]).all().item<bool>(), $"averaged tensor {name} differs after resume");
        Assert.Contains(a.Optimizer.Keys, k => k.EndsWith("#square_avg"));
        // The average is not the model itself.
        Assert.False(a.Model["fc.weight"].eq(a.Ema!["fc.weight"]).all().item<bool>());

        var rowsA = CsvSink.Read(dir["straight/metrics.csv"]);
        var rowsB = CsvSink.Read(dir["resumed/metrics.csv"]);
        Assert.Equal(rowsA.Select(r => r with { Seconds = 0, RssMb = 0 }), rowsB.Select(r => r with { Seconds = 0, RssMb = 0 }));
        Assert.All(rowsA, r => Assert.InRange(r.EmaValTop1!.Value, 0, 1));
        Assert.StartsWith("epoch,step,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds,rss_mb,ema_val_loss,ema_val_top1,ema_val_top5", File.ReadAllLines(dir["straight/metrics.csv"])[0]);
    }
}
