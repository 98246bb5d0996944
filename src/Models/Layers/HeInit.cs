using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models.Layers;

/// <summary>
/// He et al. (2015) initialisation as torchvision applies it: Kaiming-normal convolutions
/// (fan_out, ReLU gain), BatchNorm scale 1 and shift 0; linear layers keep PyTorch's default.
/// </summary>
public static class HeInit
{
    public static void Apply(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (_, child) in module.named_modules())
        {
            switch (child)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
            }
        }
    }
}
