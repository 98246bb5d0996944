namespace Trainer.Data;

/// <summary>A labelled image collection, whatever its storage: CIFAR records in memory or an image folder on disk.</summary>
public interface ILabelledImages
{
    int Count { get; }
    int Label(int index);
    /// <summary>Class names in label order.</summary>
    IReadOnlyList<string> Classes { get; }
    /// <summary>Where the images came from, for messages and the run summary.</summary>
    string Source { get; }
}
