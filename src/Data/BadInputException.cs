namespace Trainer.Data;

/// <summary>
/// A problem with what the user gave us (a config, an argument, a data or weights file). The CLI
/// prints its message as one line and exits with code 2; the message names the file or key.
/// </summary>
public sealed class BadInputException(string message) : Exception(message);
