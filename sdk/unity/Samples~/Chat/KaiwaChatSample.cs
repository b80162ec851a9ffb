using System;
using System.Collections.Generic;
using Kaiwa;
using UnityEngine;

namespace Kaiwa.Samples
{
    /// <summary>
    /// A minimal chat window: connects with a token your game server handed
    /// over, joins a channel, shows what arrives and sends what is typed.
    /// Add it to any GameObject, fill in the URL and token, press Play.
    /// </summary>
    public sealed class KaiwaChatSample : MonoBehaviour
    {
        [Tooltip("wss://HOST/v2/ws")]
        [SerializeField] string url = "wss://chat.example.com/v2/ws";

        [Tooltip("A user token from your game server (POST /tokens). Never ship one in a build.")]
        [SerializeField] string token = "";

        [SerializeField] string channel = "lobby";

        KaiwaClient client;
        readonly List<string> lines = new List<string>();
        string draft = "";

        async void Start()
        {
            client = new KaiwaClient(url, new KaiwaOptions { Token = token });
            // Handlers run in Update, on the main thread (DispatchPending).
            client.MessageReceived += m => Show(m.System ? $"[{m.Channel}] * {m.Text}" : $"[{m.Channel}] {m.Name}: {m.Text}");
            client.PresenceChanged += p => Show($"[{p.Channel}] {p.Name} {(p.Joined ? "joined" : "left")}");
            client.StateChanged += s => Show($"({s})");
            client.Resumed += (ch, recovered) => { if (!recovered) Show($"[{ch}] some messages are no longer available"); };
            client.ErrorReceived += e => Debug.LogWarning("Kaiwa: " + e);
            try
            {
                await client.ConnectAsync();
                await client.JoinAsync(channel);
                foreach (var m in await client.HistoryAsync(channel, 20)) Show($"[{m.Channel}] {m.Name}: {m.Text}");
            }
            catch (Exception e)
            {
                Debug.LogException(e);
            }
        }

        void Update()
        {
            if (client != null) client.DispatchPending();
        }

        void OnDestroy()
        {
            if (client != null) client.Dispose();
        }

        void OnGUI()
        {
            foreach (var line in lines) GUILayout.Label(line);
            GUILayout.BeginHorizontal();
            draft = GUILayout.TextField(draft, GUILayout.Width(300));
            if (GUILayout.Button("Send") && draft.Length > 0)
            {
                Send(draft);
                draft = "";
            }
            GUILayout.EndHorizontal();
        }

        async void Send(string text)
        {
            try
            {
                await client.SayAsync(channel, text);
            }
            catch (KaiwaException e)
            {
                Show($"(not sent: {e.Code})");
            }
            catch (TimeoutException)
            {
                Show("(not sent: no answer)");
            }
        }

        void Show(string line)
        {
            lines.Add(line);
            if (lines.Count > 30) lines.RemoveAt(0);
        }
    }
}
