using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Tasks;
using Kaiwa;

namespace Kaiwa.Tests
{
    /// <summary>
    /// A WebSocket server on 127.0.0.1 that a test scripts frame by frame,
    /// byte for byte, so that it can send what no real server would.
    /// </summary>
    internal sealed class FakeServer : IDisposable
    {
        readonly TcpListener listener;
        readonly List<FakeConn> conns = new List<FakeConn>();

        public FakeServer()
        {
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public int Port { get; }

        public string Url(string version) { return "ws://127.0.0.1:" + Port + "/" + version + "/ws"; }

        /// <summary>Accepts the next connection and completes its upgrade.</summary>
        public async Task<FakeConn> AcceptAsync(int timeoutMs = 5000)
        {
            var accept = listener.AcceptTcpClientAsync();
            if (await Task.WhenAny(accept, Task.Delay(timeoutMs)) != accept) throw new AssertionException("no connection within " + timeoutMs + " ms");
            var c = new FakeConn(accept.Result);
            lock (conns) conns.Add(c);
            await c.UpgradeAsync();
            return c;
        }

        /// <summary>Checks that no connection comes within ms.</summary>
        public async Task NoConnectionAsync(int ms)
        {
            var accept = listener.AcceptTcpClientAsync();
            if (await Task.WhenAny(accept, Task.Delay(ms)) == accept)
            {
                accept.Result.Close();
                throw new AssertionException("a connection came, want none");
            }
        }

        public void Dispose()
        {
            listener.Stop();
            lock (conns)
            {
                foreach (var c in conns) c.Dispose();
            }
        }
    }

    internal sealed class FakeConn : IDisposable
    {
        readonly TcpClient tcp;
        readonly NetworkStream stream;
        readonly Stopwatch clock = Stopwatch.StartNew();
        readonly Queue<JsonValue> ops = new Queue<JsonValue>();
        public readonly Dictionary<string, string> Headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        public FakeConn(TcpClient tcp)
        {
            this.tcp = tcp;
            tcp.NoDelay = true;
            stream = tcp.GetStream();
        }

        /// <summary>The request's path (/v2/ws).</summary>
        public string Path { get; private set; }

        public bool V2 { get { return Path.StartsWith("/v2/", StringComparison.Ordinal); } }

        /// <summary>The "t" and "e" of the client's latest envelope.</summary>
        public long ClientT, ClientE;
        public bool ClientHasE;
        TimeSpan arrivedAt;

        /// <summary>The "t" of the latest envelope sent.</summary>
        public long SentT;

        /// <summary>
        /// The whole ms since the client's latest envelope arrived, truncated
        /// as the real server does (so an honest echo is never ahead of the
        /// client's clock).
        /// </summary>
        public long HeldMs { get { return (long)Math.Floor((clock.Elapsed - arrivedAt).TotalMilliseconds); } }

        /// <summary>The server's clock: ms since the connection was accepted.</summary>
        public long Now { get { return clock.ElapsedMilliseconds; } }

        public async Task UpgradeAsync()
        {
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one, 0, 1) != 1) throw new IOException("the client left during the upgrade");
                head.Append((char)one[0]);
            }
            var lines = head.ToString().Split(new[] { "\r\n" }, StringSplitOptions.RemoveEmptyEntries);
            Path = lines[0].Split(' ')[1];
            for (int i = 1; i < lines.Length; i++)
            {
                int colon = lines[i].IndexOf(':');
                if (colon > 0) Headers[lines[i].Substring(0, colon).Trim()] = lines[i].Substring(colon + 1).Trim();
            }
            string accept;
            using (var sha = SHA1.Create())
            {
                accept = Convert.ToBase64String(sha.ComputeHash(Encoding.ASCII.GetBytes(Headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            }
            var resp = Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n");
            await stream.WriteAsync(resp, 0, resp.Length);
        }

        async Task ReadExactly(byte[] b, int n)
        {
            int got = 0;
            while (got < n)
            {
                int r = await stream.ReadAsync(b, got, n - got);
                if (r == 0) throw new EndOfStreamException("the client closed the connection");
                got += r;
            }
        }

        /// <summary>Reads the next data or close frame (answering pings): its opcode and payload.</summary>
        public async Task<KeyValuePair<int, byte[]>> ReadFrameAsync()
        {
            while (true)
            {
                var h = new byte[2];
                await ReadExactly(h, 2);
                int opcode = h[0] & 0x0f;
                long len = h[1] & 0x7f;
                if (len == 126)
                {
                    var b = new byte[2];
                    await ReadExactly(b, 2);
                    len = (b[0] << 8) | b[1];
                }
                else if (len == 127)
                {
                    var b = new byte[8];
                    await ReadExactly(b, 8);
                    len = 0;
                    for (int i = 0; i < 8; i++) len = (len << 8) | b[i];
                }
                var mask = new byte[4];
                if ((h[1] & 0x80) != 0) await ReadExactly(mask, 4);
                var payload = new byte[len];
                await ReadExactly(payload, (int)len);
                for (int i = 0; i < payload.Length; i++) payload[i] ^= mask[i % 4];
                if (opcode == 9)
                {
                    await SendFrameAsync(10, payload);
                    continue;
                }
                if (opcode == 10) continue;
                return new KeyValuePair<int, byte[]>(opcode, payload);
            }
        }

        /// <summary>Reads the client's next op (v2: out of its envelope, noting the clocks).</summary>
        public async Task<JsonValue> ReadOpAsync(int timeoutMs = 5000)
        {
            if (ops.Count > 0) return ops.Dequeue();
            var read = ReadFrameAsync();
            if (await Task.WhenAny(read, Task.Delay(timeoutMs)) != read) throw new AssertionException("no op from the client within " + timeoutMs + " ms");
            var f = read.Result;
            if (f.Key == 8) throw new AssertionException("the client closed the connection, want an op");
            var v = JsonValue.Parse(Encoding.UTF8.GetString(f.Value));
            if (!V2)
            {
                return v;
            }
            arrivedAt = clock.Elapsed;
            v["t"].TryGetInt64(out ClientT);
            ClientHasE = v["e"] != null;
            if (ClientHasE) v["e"].TryGetInt64(out ClientE);
            foreach (var op in v["ops"].Items) ops.Enqueue(op);
            return ops.Dequeue();
        }

        /// <summary>Reads the next op and checks its name.</summary>
        public async Task<JsonValue> ExpectOpAsync(string name)
        {
            var op = await ReadOpAsync();
            Assert.Equal(name, op["op"].AsString, "the client's op (" + op.Raw + ")");
            return op;
        }

        public Task SendFrameAsync(int opcode, byte[] payload)
        {
            var h = new List<byte> { (byte)(0x80 | opcode) };
            if (payload.Length < 126)
            {
                h.Add((byte)payload.Length);
            }
            else if (payload.Length < 65536)
            {
                h.Add(126);
                h.Add((byte)(payload.Length >> 8));
                h.Add((byte)payload.Length);
            }
            else
            {
                h.Add(127);
                for (int i = 7; i >= 0; i--) h.Add((byte)((long)payload.Length >> (8 * i)));
            }
            h.AddRange(payload);
            var all = h.ToArray();
            return stream.WriteAsync(all, 0, all.Length);
        }

        /// <summary>Sends text as one text frame, as it is.</summary>
        public Task SendRawAsync(string text) { return SendFrameAsync(1, Encoding.UTF8.GetBytes(text)); }

        /// <summary>Sends ops: v2 in one envelope stamped with the server's clock (no echo), v1 a frame each.</summary>
        public async Task SendAsync(params string[] opTexts)
        {
            if (V2)
            {
                SentT = Now;
                await SendRawAsync("{\"t\":" + SentT + ",\"ops\":[" + string.Join(",", opTexts) + "]}");
                return;
            }
            foreach (var op in opTexts) await SendRawAsync(op);
        }

        /// <summary>Answers a request op with reply, an op's text to which its ref is added.</summary>
        public Task ReplyAsync(JsonValue request, string reply)
        {
            string r = request["ref"].AsString;
            return SendAsync(reply.Substring(0, reply.Length - 1) + ",\"ref\":\"" + r + "\"}");
        }

        /// <summary>Sends a close frame with code and reason, then ends the connection.</summary>
        public async Task CloseAsync(int code, string reason)
        {
            var r = Encoding.UTF8.GetBytes(reason);
            var p = new byte[2 + r.Length];
            p[0] = (byte)(code >> 8);
            p[1] = (byte)code;
            Buffer.BlockCopy(r, 0, p, 2, r.Length);
            await SendFrameAsync(8, p);
            await Task.Delay(50);
            Dispose();
        }

        /// <summary>Drops the TCP connection without a close frame.</summary>
        public void Dispose()
        {
            try
            {
                tcp.Client.Close(0);
            }
            catch (Exception)
            {
            }
            tcp.Close();
        }
    }
}
