using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using Trainer.Data;
using Trainer.Data.Cifar;
using Xunit;

namespace Trainer.Tests;

/// <summary>The downloader against a real HTTP server on loopback, serving a real tar.gz.</summary>
public class DownloadTests
{
    /// <summary>A CIFAR-10 binary archive of the official layout, holding a few records from the shared data.</summary>
    static byte[] SmallCifar10Archive()
    {
        var source = Path.Combine(TestPaths.SharedCifar10, "cifar-10-batches-bin");
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip))
        {
            void Add(string name, byte[] bytes) =>
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "cifar-10-batches-bin/" + name) { DataStream = new MemoryStream(bytes) });
            var records = File.ReadAllBytes(Path.Combine(source, "data_batch_1.bin")).AsSpan(0, 3073 * 10).ToArray();
            foreach (var f in CifarFormat.Cifar10.TrainFiles.Concat(CifarFormat.Cifar10.TestFiles)) Add(f, records);
            Add("batches.meta.txt", File.ReadAllBytes(Path.Combine(source, "batches.meta.txt")));
        }
        return memory.ToArray();
    }

    /// <summary>Serves <paramref name="body"/> once at http://127.0.0.1:PORT/cifar-10-binary.tar.gz.</summary>
    static (string Url, Task Served) Serve(byte[] body)
    {
        var (http, port) = StartListener();
        var served = Task.Run(async () =>
        {
            var context = await http.GetContextAsync();
            context.Response.ContentLength64 = body.Length;
            await context.Response.OutputStream.WriteAsync(body);
            context.Response.Close();
            http.Stop();
        });
        return ($"http://127.0.0.1:{port}/cifar-10-binary.tar.gz", served);
    }

    /// <summary>
    /// An HttpListener on a loopback port of its own. HttpListener cannot ask the kernel for a free
    /// port, and a port seen free may be taken by another process before the listener binds it:
    /// then binding fails, and another port is tried. Once started, the port is the listener's.
    /// </summary>
    static (HttpListener Http, int Port) StartListener()
    {
        for (int attempt = 1; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var http = new HttpListener();
            http.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                http.Start();
                return (http, port);
            }
            catch (Exception e) when ((e is HttpListenerException or SocketException) && attempt < 20)
            {
                http.Close();
            }
        }
    }

    [Fact]
    public async Task Downloads_verifies_the_md5_and_extracts_readable_files()
    {
        var archive = SmallCifar10Archive();
        var md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(archive));
        var (url, served) = Serve(archive);
        using var dir = new TempDir();
        var log = new StringWriter();
        var folder = CifarDownloader.Download(CifarFormat.Cifar10, dir.Path, new CifarDownloader.Archive(url, md5), log);
        await served.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Contains($"verified MD5 {md5}", log.ToString());
        Assert.Equal(Path.Combine(dir.Path, "cifar-10-batches-bin"), folder);
        var train = CifarFolder.LoadTrain(CifarFormat.Cifar10, dir.Path);
        Assert.Equal(50, train.Count);
        Assert.Equal("airplane", train.Classes[0]);
    }

    [Fact]
    public async Task A_checksum_mismatch_discards_the_download_and_extracts_nothing()
    {
        var (url, served) = Serve(SmallCifar10Archive());
        using var dir = new TempDir();
        var e = Assert.Throws<BadInputException>(() =>
            CifarDownloader.Download(CifarFormat.Cifar10, dir.Path, new CifarDownloader.Archive(url, "c32a1d4ab5d03f1284b67883e8d87530"), TextWriter.Null));
        await served.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Contains("does not match the published c32a1d4ab5d03f1284b67883e8d87530", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void Without_a_network_the_cli_says_in_one_line_where_to_put_the_files()
    {
        using var dir = new TempDir();
        // A port bound here but not listening: connecting is refused, and while this socket holds
        // the port no other process can start listening on it.
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var url = $"http://127.0.0.1:{((IPEndPoint)closed.LocalEndPoint!).Port}/cifar-10-binary.tar.gz";
        var result = Cli.Run("data", "download", "cifar10", "--dir", dir.Path, "--url", url);
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.Contains("could not fetch", line);
        Assert.Contains(Path.Combine(dir.Path, "cifar-10-batches-bin"), line);
        Assert.Contains("data_batch_1.bin", line);
        Assert.Contains("test_batch.bin", line);
    }
}
