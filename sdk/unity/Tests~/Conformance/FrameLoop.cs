using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Kaiwa;

namespace KaiwaConformance
{
    /// <summary>
    /// A game's main loop, as the runner's only thread: continuations posted
    /// to it run there, and once per frame it calls DispatchPending on every
    /// live client, so that the scenario code and the event handlers share
    /// one thread as they do in Unity.
    /// </summary>
    internal sealed class FrameLoop : SynchronizationContext
    {
        readonly object mu = new object();
        readonly Queue<KeyValuePair<SendOrPostCallback, object>> posted = new Queue<KeyValuePair<SendOrPostCallback, object>>();
        readonly AutoResetEvent signal = new AutoResetEvent(false);
        readonly List<TaskCompletionSource<bool>> frameWaiters = new List<TaskCompletionSource<bool>>();

        /// <summary>The clients whose events each frame dispatches (main thread only).</summary>
        public readonly List<KaiwaClient> Clients = new List<KaiwaClient>();

        public override void Post(SendOrPostCallback d, object state)
        {
            lock (mu) posted.Enqueue(new KeyValuePair<SendOrPostCallback, object>(d, state));
            signal.Set();
        }

        public override void Send(SendOrPostCallback d, object state)
        {
            throw new NotSupportedException("the frame loop takes posts only");
        }

        public override SynchronizationContext CreateCopy() { return this; }

        /// <summary>Completes after the next frame's dispatch.</summary>
        public Task NextFrame()
        {
            var t = new TaskCompletionSource<bool>();
            frameWaiters.Add(t);
            return t.Task;
        }

        /// <summary>Runs frames until main completes, and returns its result.</summary>
        public T Run<T>(Func<Task<T>> start)
        {
            SetSynchronizationContext(this);
            Task<T> main = start();
            while (!main.IsCompleted)
            {
                RunPosted();
                foreach (var c in Clients.ToArray()) c.DispatchPending();
                var waiters = frameWaiters.ToArray();
                frameWaiters.Clear();
                foreach (var w in waiters) w.TrySetResult(true);
                RunPosted();
                if (!main.IsCompleted) signal.WaitOne(5);
            }
            return main.GetAwaiter().GetResult();
        }

        void RunPosted()
        {
            while (true)
            {
                KeyValuePair<SendOrPostCallback, object> p;
                lock (mu)
                {
                    if (posted.Count == 0) return;
                    p = posted.Dequeue();
                }
                p.Key(p.Value);
            }
        }
    }
}
