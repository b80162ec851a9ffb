using System;
using System.Collections.Generic;

namespace Kaiwa
{
    /// <summary>Where a <see cref="KaiwaClient"/> stands, reported by <see cref="KaiwaClient.StateChanged"/>.</summary>
    public enum ClientState
    {
        /// <summary><see cref="KaiwaClient.ConnectAsync"/> has not been called yet.</summary>
        Idle,
        /// <summary>The first connection is being made.</summary>
        Connecting,
        /// <summary>A connection is ready; requests go out at once.</summary>
        Connected,
        /// <summary>
        /// The connection was lost, or the server asked for a reconnect:
        /// requests wait for the next connection (within their time bound).
        /// </summary>
        Reconnecting,
        /// <summary>
        /// The client ended: disposed, its <see cref="KaiwaClient.ConnectAsync"/>
        /// failed, or the server refused it for good (see <see cref="KaiwaClient.ErrorReceived"/>).
        /// </summary>
        Closed,
    }

    /// <summary>
    /// The stable error codes of the Kaiwa protocol (docs/protocol.md §8), and
    /// <see cref="BadFrame"/>, the client's own. New codes may be added: treat
    /// an unknown one like <see cref="Internal"/>.
    /// </summary>
    public static class ErrorCodes
    {
        public const string BadRequest = "bad_request";
        public const string UnknownOp = "unknown_op";
        public const string Unauthorized = "unauthorized";
        public const string TokenExpired = "token_expired";
        public const string Forbidden = "forbidden";
        public const string NotFound = "not_found";
        public const string NotJoined = "not_joined";
        public const string NgWord = "ng_word";
        public const string RateLimited = "rate_limited";
        public const string TooLarge = "too_large";
        public const string Muted = "muted";
        public const string Banned = "banned";
        public const string VersionNotAllowed = "version_not_allowed";
        public const string Unavailable = "unavailable";
        public const string Internal = "internal";

        /// <summary>A direct message to a user who blocks the sender.</summary>
        public const string Blocked = "blocked";

        /// <summary>
        /// The tenant's before-send hook refused the message; the error's
        /// message is the hook's reason.
        /// </summary>
        public const string Rejected = "rejected";

        /// <summary>
        /// Never sent by a server: the client received something it could not
        /// read (not JSON, not the protocol's shape, not UTF-8, over
        /// <see cref="KaiwaOptions.ReadLimit"/>). It was skipped and the
        /// connection goes on.
        /// </summary>
        public const string BadFrame = "bad_frame";
    }

    /// <summary>A request the server refused, or a client that ended: the error code and message.</summary>
    public sealed class KaiwaException : Exception
    {
        public KaiwaException(string code, string message) : base(code + ": " + message)
        {
            Code = code;
            ServerMessage = message;
        }

        /// <summary>The error code, one of <see cref="ErrorCodes"/> (or a newer one).</summary>
        public string Code { get; }

        /// <summary>The server's English text, for logs; it may change.</summary>
        public string ServerMessage { get; }
    }

    /// <summary>An error that answers no request, as <see cref="KaiwaClient.ErrorReceived"/> reports it.</summary>
    public sealed class KaiwaError
    {
        public KaiwaError(string code, string message, string channel)
        {
            Code = code;
            Message = message;
            Channel = channel;
        }

        /// <summary>One of <see cref="ErrorCodes"/>.</summary>
        public string Code { get; }

        /// <summary>English text for logs.</summary>
        public string Message { get; }

        /// <summary>The channel concerned, when there is one (a channel that could not be joined again); else null.</summary>
        public string Channel { get; }

        public override string ToString()
        {
            return Channel == null ? Code + ": " + Message : Code + " (" + Channel + "): " + Message;
        }
    }

    /// <summary>A chat or system message, live or from <see cref="KaiwaClient.HistoryAsync"/>.</summary>
    public sealed class Message
    {
        internal Message(string ch, string id, long seq, long prev, string from, string name, string text, string data, long ts, bool system)
        {
            Channel = ch;
            Id = id;
            Seq = seq;
            Prev = prev;
            From = from;
            Name = name;
            Text = text;
            Data = data;
            Timestamp = ts;
            System = system;
        }

        /// <summary>The channel: a channel name, "dm:a:b" for direct messages, "@user" for the user's inbox.</summary>
        public string Channel { get; }

        /// <summary>The server's message id: opaque; use it to de-duplicate and as "before" in history.</summary>
        public string Id { get; }

        /// <summary>The message's sequence number (v2; 0 in v1).</summary>
        public long Seq { get; }

        /// <summary>The Seq of the channel's previous message (v2; 0 for the first, and in v1).</summary>
        public long Prev { get; }

        /// <summary>The sender's user id; null for system messages.</summary>
        public string From { get; }

        /// <summary>The sender's display name when it was sent; null for system messages.</summary>
        public string Name { get; }

        /// <summary>The text (may be empty when Data is set).</summary>
        public string Text { get; }

        /// <summary>
        /// The sender's JSON object as raw JSON text, exactly as relayed; null
        /// when there is none. Read it with the JSON library of your choice
        /// (JsonUtility.FromJson for a fixed shape).
        /// </summary>
        public string Data { get; }

        /// <summary>When the server accepted it, in milliseconds since the Unix epoch.</summary>
        public long Timestamp { get; }

        /// <summary>True for system messages from the game server.</summary>
        public bool System { get; }

        /// <summary>When the server accepted it.</summary>
        public DateTimeOffset Time { get { return DateTimeOffset.FromUnixTimeMilliseconds(Timestamp); } }

        /// <summary>The id of the message of the same channel this one answers; null when it answers none.</summary>
        public string ReplyTo { get; internal set; }

        /// <summary>A short quote of the message replied to; null when it answers none.</summary>
        public Quote Quote { get; internal set; }

        /// <summary>References to files the message shows; empty when none.</summary>
        public IReadOnlyList<Attachment> Attachments { get; internal set; } = NoAttachments;

        /// <summary>The message's reaction counts (in history, search and replays); empty when none.</summary>
        public IReadOnlyList<Reaction> Reactions { get; internal set; } = NoReactions;

        /// <summary>When the author last edited the text, in milliseconds since the Unix epoch; 0: never.</summary>
        public long EditedAt { get; internal set; }

        internal static readonly IReadOnlyList<Attachment> NoAttachments = new Attachment[0];
        internal static readonly IReadOnlyList<Reaction> NoReactions = new Reaction[0];

        public override string ToString()
        {
            return Channel + " " + (System ? "[system]" : From) + ": " + Text;
        }
    }

    /// <summary>Another session joined or left a channel this client is in.</summary>
    public sealed class Presence
    {
        internal Presence(string ch, string user, string name, string ev)
        {
            Channel = ch;
            User = user;
            Name = name;
            Event = ev;
        }

        public string Channel { get; }
        public string User { get; }
        public string Name { get; }

        /// <summary>"join" or "leave"; "typing" in <see cref="KaiwaClient.Typing"/>.</summary>
        public string Event { get; }

        /// <summary>True for "join".</summary>
        public bool Joined { get { return Event == "join"; } }
    }

    /// <summary>
    /// Messages of a channel the client knows it missed (v2): those after seq
    /// After, up to the message with seq Before, which was just delivered.
    /// The server could not replay them; read them with
    /// <see cref="KaiwaClient.HistoryAsync"/> if they matter.
    /// </summary>
    public sealed class MessageGap
    {
        internal MessageGap(string ch, long after, long before)
        {
            Channel = ch;
            After = after;
            Before = before;
        }

        public string Channel { get; }
        public long After { get; }
        public long Before { get; }
    }

    /// <summary>The answer to a send: the message's id and seq (0 in v1), and its channel.</summary>
    public sealed class SendResult
    {
        internal SendResult(string id, long seq, string ch)
        {
            Id = id;
            Seq = seq;
            Channel = ch;
        }

        public string Id { get; }
        public long Seq { get; }

        /// <summary>The channel it went to (for a direct message, "dm:" and the two user ids sorted).</summary>
        public string Channel { get; }
    }

    /// <summary>What the server reported when the current connection became ready.</summary>
    public sealed class ReadyInfo
    {
        internal ReadyInfo(string user, string name, IReadOnlyList<string> channels, string version, long serverTime, string sunset, IReadOnlyDictionary<string, long> seqs,
            IReadOnlyDictionary<string, UnreadCount> unread, IReadOnlyList<string> blocks)
        {
            Unread = unread;
            Blocks = blocks;
            User = user;
            Name = name;
            Channels = channels;
            Version = version;
            ServerTime = serverTime;
            DeprecationSunset = sunset;
            Seqs = seqs;
        }

        /// <summary>The user id the token belongs to.</summary>
        public string User { get; }

        /// <summary>The user's display name.</summary>
        public string Name { get; }

        /// <summary>The channels the session joined (member channels, and those resumed).</summary>
        public IReadOnlyList<string> Channels { get; }

        /// <summary>The protocol version ("v1", "v2").</summary>
        public string Version { get; }

        /// <summary>The server's clock, in milliseconds since the Unix epoch.</summary>
        public long ServerTime { get; }

        /// <summary>When the protocol version stops being served (RFC 3339), if it is deprecated; else null.</summary>
        public string DeprecationSunset { get; }

        /// <summary>(v2) each joined channel's position when the session started.</summary>
        public IReadOnlyDictionary<string, long> Seqs { get; }

        /// <summary>
        /// Each joined channel's unread count when the session started (empty
        /// when the server could not tell in time: ask <see cref="KaiwaClient.UnreadAsync"/>).
        /// Counts come from the message log, which follows the chat by a moment.
        /// </summary>
        public IReadOnlyDictionary<string, UnreadCount> Unread { get; }

        /// <summary>The users the user blocks: their messages are not delivered to the user.</summary>
        public IReadOnlyList<string> Blocks { get; }
    }
}
