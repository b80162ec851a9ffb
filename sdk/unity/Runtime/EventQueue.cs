using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Kaiwa
{
    /// <summary>
    /// The hand-over of events from the client's background tasks to the
    /// game's thread: background tasks add, and the game's thread takes them
    /// in <see cref="Drain"/> (from DispatchPending, or from a callback
    /// posted to a SynchronizationContext), which calls the handlers there.
    /// Bounded: <see cref="Room"/> lets the reader wait while it is full.
    /// mu guards everything; no callback runs under it.
    /// </summary>
    internal sealed class EventQueue
    {
        readonly object mu = new object();
        readonly Queue<Action> q = new Queue<Action>();
        readonly int max;
        readonly SynchronizationContext context;
        readonly SendOrPostCallback drainCallback;
        TaskCompletionSource<bool> room; // waited on while full
        bool posted;   // a drain is posted to context and has not run yet
        bool closed;   // no more bound: Room never waits
        int draining;  // a Drain is running (on some thread)

        public EventQueue(int max, SynchronizationContext context)
        {
            this.max = max;
            this.context = context;
            drainCallback = _ => DrainPosted();
        }

        /// <summary>Adds a delivery (a call of the handlers), in order.</summary>
        public void Add(Action delivery)
        {
            bool post = false;
            lock (mu)
            {
                q.Enqueue(delivery);
                if (context != null && !posted)
                {
                    posted = true;
                    post = true;
                }
            }
            if (post) context.Post(drainCallback, null);
        }

        public int Count
        {
            get
            {
                lock (mu) return q.Count;
            }
        }

        /// <summary>Completes when fewer than the bound wait (at once, usually).</summary>
        public Task Room()
        {
            lock (mu)
            {
                if (closed || q.Count < max) return Task.CompletedTask;
                if (room == null) room = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                return room.Task;
            }
        }

        /// <summary>Lifts the bound for good, releasing a reader waiting for room.</summary>
        public void Unbound()
        {
            TaskCompletionSource<bool> r;
            lock (mu)
            {
                closed = true;
                r = room;
                room = null;
            }
            if (r != null) r.TrySetResult(true);
        }

        /// <summary>
        /// Delivers the events waiting when it was called, in order, on the
        /// calling thread, and returns how many. A handler's exception
        /// propagates after its event was taken; the rest stay for the next
        /// call. A call made while another Drain runs (a handler calling
        /// DispatchPending) returns 0.
        /// </summary>
        public int Drain()
        {
            if (Interlocked.CompareExchange(ref draining, 1, 0) != 0) return 0;
            int n = 0;
            try
            {
                int budget;
                lock (mu) budget = q.Count;
                while (n < budget)
                {
                    Action a;
                    TaskCompletionSource<bool> r = null;
                    lock (mu)
                    {
                        if (q.Count == 0) break;
                        a = q.Dequeue();
                        if (room != null && q.Count < max)
                        {
                            r = room;
                            room = null;
                        }
                    }
                    if (r != null) r.TrySetResult(true);
                    n++;
                    a();
                }
            }
            finally
            {
                Volatile.Write(ref draining, 0);
            }
            return n;
        }

        // DrainPosted runs on the context: it delivers everything, and posts
        // itself again when a handler threw with events left.
        void DrainPosted()
        {
            lock (mu) posted = false;
            bool ok = false;
            try
            {
                while (Drain() > 0) { }
                ok = true;
            }
            finally
            {
                if (!ok)
                {
                    bool post = false;
                    lock (mu)
                    {
                        if (q.Count > 0 && !posted) post = posted = true;
                    }
                    if (post) context.Post(drainCallback, null);
                }
            }
        }
    }
}
