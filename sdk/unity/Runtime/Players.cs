using System;
using System.Collections.Generic;

namespace Kaiwa
{
    // The types of what players do besides chatting (docs/protocol.md §15):
    // replies and attachments, edits, reactions, read cursors, search.

    /// <summary>The short quote a reply carries of the message it answers (its text cut to 100 characters).</summary>
    public sealed class Quote
    {
        internal Quote(string id, string from, string name, string text)
        {
            Id = id;
            From = from;
            Name = name;
            Text = text;
        }

        /// <summary>The id of the message replied to.</summary>
        public string Id { get; }

        /// <summary>Its sender's user id; null for a system message.</summary>
        public string From { get; }

        /// <summary>Its sender's display name; null for a system message.</summary>
        public string Name { get; }

        /// <summary>Its text, at most 100 characters.</summary>
        public string Text { get; }
    }

    /// <summary>
    /// A reference to a file a message shows: Kaiwa stores no files, only
    /// the https URL (at most 2048 bytes) and what the game says of it.
    /// </summary>
    public sealed class Attachment
    {
        /// <summary>The types a server takes (a newer server may send others).</summary>
        public const string Image = "image", Video = "video", Audio = "audio", File = "file", Link = "link";

        /// <summary>Makes a reference to send with <see cref="SayOptions.Attachments"/>.</summary>
        /// <param name="type"><see cref="Image"/>, <see cref="Video"/>, <see cref="Audio"/>, <see cref="File"/> or <see cref="Link"/>.</param>
        /// <param name="url">An https URL of at most 2048 bytes.</param>
        /// <param name="width">0–16384; 0: not given.</param>
        /// <param name="height">0–16384; 0: not given.</param>
        /// <param name="name">At most 200 characters; null: none.</param>
        public Attachment(string type, string url, int width = 0, int height = 0, string name = null)
        {
            if (string.IsNullOrEmpty(type)) throw new ArgumentException("type must not be empty", "type");
            if (string.IsNullOrEmpty(url)) throw new ArgumentException("url must not be empty", "url");
            if (width < 0 || height < 0) throw new ArgumentException("width and height must not be negative");
            Type = type;
            Url = url;
            Width = width;
            Height = height;
            Name = name;
        }

        public string Type { get; }
        public string Url { get; }

        /// <summary>The width in pixels; 0 when not given.</summary>
        public int Width { get; }

        /// <summary>The height in pixels; 0 when not given.</summary>
        public int Height { get; }

        /// <summary>A name to show; null when not given.</summary>
        public string Name { get; }

        internal void Write(JsonWriter w)
        {
            w.BeginObject().Member("type", Type).Member("url", Url);
            if (Width != 0) w.Member("width", Width);
            if (Height != 0) w.Member("height", Height);
            if (!string.IsNullOrEmpty(Name)) w.Member("name", Name);
            w.EndObject();
        }
    }

    /// <summary>How many users reacted to a message with one emoji.</summary>
    public sealed class Reaction
    {
        internal Reaction(string emoji, long count)
        {
            Emoji = emoji;
            Count = count;
        }

        public string Emoji { get; }
        public long Count { get; }

        public override string ToString() { return Emoji + " " + Count; }
    }

    /// <summary>The author edited a message (live, or replayed after a reconnect): its new text.</summary>
    public sealed class MessageEdit
    {
        internal MessageEdit(string ch, string id, long seq, string from, string text, long editedAt)
        {
            Channel = ch;
            Id = id;
            Seq = seq;
            From = from;
            Text = text;
            EditedAt = editedAt;
        }

        public string Channel { get; }

        /// <summary>The id of the message edited.</summary>
        public string Id { get; }

        /// <summary>The edit's place in the channel's stream (v2; 0 in v1).</summary>
        public long Seq { get; }

        /// <summary>The author's user id.</summary>
        public string From { get; }

        /// <summary>The message's text now.</summary>
        public string Text { get; }

        /// <summary>When it was edited, in milliseconds since the Unix epoch.</summary>
        public long EditedAt { get; }
    }

    /// <summary>A user added or took back a reaction to a message; <see cref="Reactions"/> are the message's counts after it.</summary>
    public sealed class ReactionChange
    {
        internal ReactionChange(string ch, string id, long seq, string user, string emoji, bool added, IReadOnlyList<Reaction> reactions)
        {
            Channel = ch;
            Id = id;
            Seq = seq;
            User = user;
            Emoji = emoji;
            Added = added;
            Reactions = reactions;
        }

        public string Channel { get; }

        /// <summary>The id of the message reacted to.</summary>
        public string Id { get; }

        /// <summary>The change's place in the channel's stream (v2; 0 in v1).</summary>
        public long Seq { get; }

        /// <summary>Who reacted.</summary>
        public string User { get; }

        public string Emoji { get; }

        /// <summary>True when the reaction was added, false when taken back.</summary>
        public bool Added { get; }

        /// <summary>The message's reaction counts after the change (what to show).</summary>
        public IReadOnlyList<Reaction> Reactions { get; }
    }

    /// <summary>
    /// A channel's unread count: <see cref="Count"/> messages of others
    /// after the user's read cursor <see cref="Read"/> (at most 999), and
    /// <see cref="Last"/>, the channel's position.
    /// </summary>
    public sealed class UnreadCount
    {
        internal UnreadCount(long count, long read, long last)
        {
            Count = count;
            Read = read;
            Last = last;
        }

        public long Count { get; }

        /// <summary>The seq the user read the channel up to (0: never read).</summary>
        public long Read { get; }

        /// <summary>The channel's position, its newest seq as the session knows it: mark the channel read up to it to clear the count (0 when the server did not say).</summary>
        public long Last { get; }

        public override string ToString() { return Count + " unread (read " + Read + ", last " + Last + ")"; }
    }

    /// <summary>A page of <see cref="KaiwaClient.SearchAsync"/>: messages newest first, and the "before" of the next page.</summary>
    public sealed class SearchPage
    {
        internal SearchPage(IReadOnlyList<Message> messages, string next)
        {
            Messages = messages;
            Next = next;
        }

        /// <summary>The messages found, newest first.</summary>
        public IReadOnlyList<Message> Messages { get; }

        /// <summary>Pass it as SearchAsync's before for the next page; null when there is none.</summary>
        public string Next { get; }
    }

    /// <summary>What a <see cref="KaiwaClient.SayAsync(string, string, SayOptions, System.Threading.CancellationToken)"/> or DmAsync may carry besides its text.</summary>
    public sealed class SayOptions
    {
        /// <summary>A JSON object's text, relayed to recipients as it is; null: none.</summary>
        public string Data { get; set; }

        /// <summary>The client message id; null: a fresh one (kept across resends).</summary>
        public string Cid { get; set; }

        /// <summary>The id of a message of the same channel this one answers: the delivered message quotes it.</summary>
        public string ReplyTo { get; set; }

        /// <summary>Up to 4 (the game's setting) references to files.</summary>
        public IList<Attachment> Attachments { get; set; }
    }
}
