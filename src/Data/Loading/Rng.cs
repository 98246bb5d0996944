namespace Trainer.Data.Loading;

/// <summary>
/// A small, fast, seedable generator (xoshiro256**, seeded by SplitMix64). Streams are derived
/// from (seed, epoch, index) so every draw is reproducible no matter which thread makes it or
/// where a resumed run starts.
/// </summary>
internal struct Rng
{
    ulong _s0, _s1, _s2, _s3;

    public Rng(params ulong[] keys)
    {
        ulong x = 0x9E3779B97F4A7C15UL;
        foreach (var k in keys) x = SplitMix(x ^ k);
        _s0 = SplitMix(x); _s1 = SplitMix(_s0); _s2 = SplitMix(_s1); _s3 = SplitMix(_s2);
    }

    static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform integer in [0, bound).</summary>
    public int Next(int bound) => (int)((NextUInt64() >> 33) * (ulong)bound >> 31);

    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform double in [a, b).</summary>
    public double Uniform(double a, double b) => a + (b - a) * NextDouble();

    /// <summary>Standard normal (Box-Muller).</summary>
    public double NextGaussian()
    {
        double u = 1.0 - NextDouble(), v = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }

    /// <summary>A uniformly shuffled 0..n-1 (Fisher-Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
