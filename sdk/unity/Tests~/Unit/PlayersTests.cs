using System;
using System.Linq;
using System.Threading.Tasks;
using Kaiwa;

namespace Kaiwa.Tests
{
    // What players do (docs/protocol.md §15) against the fake server: the
    // ops the client sends, the answers and pushes it reads, and what it
    // does with those it cannot read.
    internal static class PlayersTests
    {
        // Answer reads the client's next op, checks its name and answers it.
        static async Task<JsonValue> Answer(Live live, string op, string reply)
        {
            var got = await live.Conn.ExpectOpAsync(op);
            await live.Conn.ReplyAsync(got, reply);
            return got;
        }

        static string Members(JsonValue op)
        {
            return string.Join(",", op.Members.Where(m => m.Key != "op" && m.Key != "ref").Select(m => m.Key + "=" + m.Value.Raw));
        }

        [Test]
        static async Task SendsEachOpAndReadsItsAnswer()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                var edit = live.C.EditAsync("lobby", "m1", "hello all");
                var op = await Answer(live, "edit", "{\"op\":\"ok\",\"ch\":\"lobby\",\"id\":\"m1\",\"seq\":12}");
                Assert.Equal("ch=\"lobby\",id=\"m1\",text=\"hello all\"", Members(op), "edit");
                Assert.Equal(12L, await edit, "the edit's seq");

                var del = live.C.DeleteAsync("lobby", "m1");
                op = await Answer(live, "delete", "{\"op\":\"ok\",\"ch\":\"lobby\",\"id\":\"m1\"}");
                Assert.Equal("ch=\"lobby\",id=\"m1\"", Members(op), "delete");
                await del;

                var react = live.C.ReactAsync("lobby", "m2", "👍");
                op = await Answer(live, "react", "{\"op\":\"ok\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":13}");
                Assert.Equal("ch=\"lobby\",id=\"m2\",emoji=\"👍\"", Members(op), "react");
                await react;
                var unreact = live.C.UnreactAsync("lobby", "m2", "👍");
                op = await Answer(live, "unreact", "{\"op\":\"ok\",\"ch\":\"lobby\",\"id\":\"m2\"}"); // nothing changed: no seq
                Assert.Equal("ch=\"lobby\",id=\"m2\",emoji=\"👍\"", Members(op), "unreact");
                await unreact;

                var read = live.C.MarkReadAsync("lobby", 13);
                op = await Answer(live, "read", "{\"op\":\"ok\",\"ch\":\"lobby\",\"seq\":20}");
                Assert.Equal("ch=\"lobby\",seq=13", Members(op), "read");
                Assert.Equal(20L, await read, "the cursor, which never moves back");

                var unread = live.C.UnreadAsync();
                op = await Answer(live, "unread", "{\"op\":\"unread\",\"unread\":{\"lobby\":{\"count\":3,\"read\":20,\"last\":23},\"guild\":{\"count\":0,\"read\":0}}}");
                Assert.Equal("", Members(op), "unread of every channel");
                var counts = await unread;
                Assert.Equal(3L, counts["lobby"].Count, "lobby's count");
                Assert.Equal(20L, counts["lobby"].Read, "lobby's cursor");
                Assert.Equal(23L, counts["lobby"].Last, "lobby's position");
                Assert.Equal(0L, counts["guild"].Last, "a position not given");
                unread = live.C.UnreadAsync("lobby");
                op = await Answer(live, "unread", "{\"op\":\"unread\",\"unread\":{}}");
                Assert.Equal("ch=\"lobby\"", Members(op), "unread of one channel");
                Assert.Equal(0, (await unread).Count, "no counts");

                foreach (var which in new[] { "block", "unblock" })
                {
                    var t = which == "block" ? live.C.BlockAsync("troll") : live.C.UnblockAsync("troll");
                    op = await Answer(live, which, "{\"op\":\"ok\"}");
                    Assert.Equal("user=\"troll\"", Members(op), which);
                    await t;
                }

                var typing = live.C.TypingAsync("lobby");
                op = await Answer(live, "typing", "{\"op\":\"ok\",\"ch\":\"lobby\"}");
                Assert.Equal("ch=\"lobby\"", Members(op), "typing");
                await typing;

                var search = live.C.SearchAsync("raid", "lobby", 10, "m9");
                op = await Answer(live, "search", "{\"op\":\"search\",\"messages\":[" + ClientTests.Msg("lobby", "raid tonight?", 8, 7) + "," + ClientTests.Msg("lobby", "raid!", 5, 4) + "],\"next\":\"m5\"}");
                Assert.Equal("q=\"raid\",ch=\"lobby\",limit=10,before=\"m9\"", Members(op), "search");
                var page = await search;
                Assert.Seq(new[] { "raid tonight?", "raid!" }, page.Messages.Select(m => m.Text), "the messages found, newest first");
                Assert.Equal("m5", page.Next, "the next page");
                search = live.C.SearchAsync("raid");
                op = await Answer(live, "search", "{\"op\":\"search\",\"messages\":[]}");
                Assert.Equal("q=\"raid\"", Members(op), "a search of every channel");
                Assert.Equal(null, (await search).Next, "no next page");

                await Assert.ThrowsAsync<ArgumentException>(() => live.C.ReactAsync("lobby", "m2", ""), "an empty emoji");
                await Assert.ThrowsAsync<ArgumentException>(() => live.C.MarkReadAsync("lobby", 0), "a seq of 0");
                await Assert.ThrowsAsync<ArgumentException>(() => live.C.EditAsync("lobby", "", "x"), "no id");
                await ClientTests.Ping(live); // nothing else was sent
            }
        }

        [Test]
        static async Task SendsRepliesAndAttachments()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                var say = live.C.SayAsync("lobby", "me!", new SayOptions
                {
                    ReplyTo = "m1",
                    Attachments = new[] { new Attachment(Attachment.Image, "https://cdn.example.com/a.png", 64, 48), new Attachment(Attachment.Link, "https://example.com/", name: "guide") },
                });
                var op = await Answer(live, "say", "{\"op\":\"ok\",\"id\":\"m2\",\"seq\":2}");
                Assert.Equal("\"m1\"", op["reply_to"].Raw, "reply_to");
                Assert.Equal("[{\"type\":\"image\",\"url\":\"https://cdn.example.com/a.png\",\"width\":64,\"height\":48},{\"type\":\"link\",\"url\":\"https://example.com/\",\"name\":\"guide\"}]",
                    op["attachments"].Raw, "attachments");
                Assert.True(op["cid"] != null && op["cid"].AsString.Length == 22, "a fresh cid");
                Assert.Equal("m2", (await say).Id, "the id");

                // A resend carries the same reply and attachments.
                var dm = live.C.DmAsync("bob", "see", new SayOptions { ReplyTo = "m3", Cid = "my-cid", Data = "{\"x\":1}" });
                var first = await live.Conn.ExpectOpAsync("dm");
                live.Conn.Dispose();
                await ClientTests.Reconnected(srv, live);
                var again = await Answer(live, "dm", "{\"op\":\"ok\",\"id\":\"m4\",\"seq\":4,\"ch\":\"dm:alice:bob\"}");
                Assert.Equal(first.Raw.Replace(first["ref"].Raw, ""), again.Raw.Replace(again["ref"].Raw, ""), "the resent dm");
                Assert.Equal("to=\"bob\",text=\"see\",cid=\"my-cid\",reply_to=\"m3\",data={\"x\":1}", Members(again), "the dm");
                Assert.Equal("dm:alice:bob", (await dm).Channel, "the direct channel");

                Assert.Throws<ArgumentException>(() => new Attachment("image", ""), "an attachment without a URL");
                await Assert.ThrowsAsync<ArgumentException>(() => live.C.SayAsync("lobby", "x", new SayOptions { Attachments = new Attachment[] { null } }), "a null attachment");
                await Assert.ThrowsAsync<ArgumentException>(() => live.C.SayAsync("lobby", "x", new SayOptions { Data = "{" }), "data that is not JSON");
                await ClientTests.Ping(live);
            }
        }

        [Test]
        static async Task ABlockedDirectMessageFailsWithBlocked()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                var dm = live.C.DmAsync("carol", "hi");
                await Answer(live, "dm", "{\"op\":\"error\",\"code\":\"blocked\",\"message\":\"carol does not accept your direct messages\"}");
                await Assert.FailsWith(ErrorCodes.Blocked, () => dm, "a dm to a user who blocks the sender");
                await ClientTests.Ping(live); // not sent again
            }
        }

        [Test]
        static async Task ReadyCarriesUnreadCountsAndBlocks()
        {
            string ready = "{\"op\":\"ready\",\"user\":\"alice\",\"name\":\"Alice\",\"channels\":[\"lobby\"],\"version\":\"v2\",\"server_time\":1," +
                "\"unread\":{\"lobby\":{\"count\":3,\"read\":1051,\"last\":1060}},\"blocks\":[\"troll\"]}";
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2", null, ready))
            {
                var r = live.C.Ready;
                Assert.Equal(3L, r.Unread["lobby"].Count, "the count");
                Assert.Equal(1051L, r.Unread["lobby"].Read, "the cursor");
                Assert.Equal(1060L, r.Unread["lobby"].Last, "the position");
                Assert.Seq(new[] { "troll" }, r.Blocks, "the blocks");
                live.Conn.Dispose();
                await ClientTests.Reconnected(srv, live);
                Assert.Equal(0, live.C.Ready.Unread.Count, "a ready without counts");
                Assert.Equal(0, live.C.Ready.Blocks.Count, "a ready without blocks");
            }
        }

        [Test]
        static async Task PushesBecomeEvents()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                await live.Conn.SendAsync(
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m51\",\"seq\":51,\"prev\":50,\"from\":\"bob\",\"name\":\"Bob\",\"text\":\"me!\",\"ts\":1," +
                    "\"reply_to\":\"m50\",\"quote\":{\"id\":\"m50\",\"from\":\"alice\",\"name\":\"Alice\",\"text\":\"who wants to raid?\"}," +
                    "\"attachments\":[{\"type\":\"image\",\"url\":\"https://cdn.example.com/a.png\",\"width\":64,\"height\":64},{\"type\":\"sticker\",\"url\":\"https://cdn.example.com/s\"}]}",
                    "{\"op\":\"edited\",\"ch\":\"lobby\",\"id\":\"m50\",\"seq\":52,\"from\":\"alice\",\"text\":\"who wants to raid tonight?\",\"edited_at\":1767225609000}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m50\",\"seq\":53,\"user\":\"carol\",\"emoji\":\"👍\",\"added\":true,\"reactions\":[{\"emoji\":\"👍\",\"count\":2},{\"emoji\":\"🎉\",\"count\":1}]}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m50\",\"seq\":54,\"user\":\"carol\",\"emoji\":\"🎉\",\"added\":false,\"reactions\":[]}",
                    "{\"op\":\"read\",\"ch\":\"lobby\",\"seq\":53}",
                    "{\"op\":\"typing\",\"ch\":\"lobby\",\"user\":\"bob\",\"name\":\"Bob\"}",
                    "{\"op\":\"typing\",\"ch\":\"dm:alice:bob\",\"user\":\"bob\",\"name\":\"Bob\"}",
                    "{\"op\":\"deleted\",\"ch\":\"lobby\",\"id\":\"m51\"}");
                await live.R.Until(() => live.R.Log.Any(l => l.StartsWith("deleted")), "the deletion");
                Assert.Seq(new[]
                {
                    "msg lobby me!", "edited lobby m50 who wants to raid tonight?", "reaction lobby m50 carol 👍 True", "reaction lobby m50 carol 🎉 False",
                    "read lobby 53", "typing lobby bob Bob", "typing dm:alice:bob bob Bob", "deleted lobby m51",
                }, live.R.Log.Where(l => !l.StartsWith("state")), "the events");

                var m = live.R.Messages[0];
                Assert.Equal("m50", m.ReplyTo, "ReplyTo");
                Assert.Equal("m50", m.Quote.Id, "Quote.Id");
                Assert.Equal("alice", m.Quote.From, "Quote.From");
                Assert.Equal("Alice", m.Quote.Name, "Quote.Name");
                Assert.Equal("who wants to raid?", m.Quote.Text, "Quote.Text");
                Assert.Equal(2, m.Attachments.Count, "the attachments");
                Assert.Equal("https://cdn.example.com/a.png", m.Attachments[0].Url, "the URL");
                Assert.Equal(64, m.Attachments[0].Height, "the height");
                Assert.Equal("sticker", m.Attachments[1].Type, "a type of a newer server");
                Assert.Equal(0, m.Reactions.Count, "no reactions");
                Assert.Equal(0L, m.EditedAt, "never edited");
                Assert.Equal(51L, live.C.LastSeqs["lobby"], "LastSeqs: changes do not move it");

                var e = live.R.Edits[0];
                Assert.Equal(52L, e.Seq, "the edit's seq");
                Assert.Equal("alice", e.From, "the author");
                Assert.Equal(1767225609000L, e.EditedAt, "EditedAt");
                var rc = live.R.Reactions[0];
                Assert.Equal("👍 2,🎉 1", string.Join(",", rc.Reactions), "the counts");
                Assert.Equal(0, live.R.Reactions[1].Reactions.Count, "no reactions left");
                Assert.Equal(0, live.R.Errors.Count, "errors");
            }
        }

        [Test]
        static async Task HistoryShowsEditsAndReactions()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v1"))
            {
                var history = live.C.HistoryAsync("lobby");
                await Answer(live, "history", "{\"op\":\"history\",\"ch\":\"lobby\",\"messages\":[" +
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"from\":\"alice\",\"text\":\"hello all\",\"ts\":1,\"edited_at\":5,\"reactions\":[{\"emoji\":\"👍\",\"count\":1}]}]}");
                var m = (await history)[0];
                Assert.Equal(5L, m.EditedAt, "EditedAt");
                Assert.Equal("👍 1", string.Join(",", m.Reactions), "the reactions");
                Assert.Equal(0, m.Attachments.Count, "no attachments");
                Assert.Equal(null, m.Quote, "no quote");

                history = live.C.HistoryAsync("lobby");
                await Answer(live, "history", "{\"op\":\"history\",\"ch\":\"lobby\",\"messages\":[{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m1\",\"text\":\"x\",\"ts\":1,\"reactions\":{\"👍\":1}}]}");
                await Assert.FailsWith(ErrorCodes.BadFrame, () => history, "reactions that are not a list");
                var search = live.C.SearchAsync("xx");
                await Answer(live, "search", "{\"op\":\"search\",\"messages\":[],\"next\":5}");
                await Assert.FailsWith(ErrorCodes.BadFrame, () => search, "a next that is not a string");
                await ClientTests.Ping(live);
            }
        }

        [Test]
        static async Task ChangesAreRaisedOnceAcrossAResume()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                string edit = "{\"op\":\"edited\",\"ch\":\"lobby\",\"id\":\"m4\",\"seq\":5,\"from\":\"bob\",\"text\":\"fixed\",\"edited_at\":9}";
                await live.Conn.SendAsync(ClientTests.Msg("lobby", "fxed", 4, 0), edit);
                await live.R.Until(() => live.R.Edits.Count == 1, "the edit");
                live.Conn.Dispose();
                var auth = await ClientTests.Reconnected(srv, live);
                Assert.Equal("lobby=4", ClientTests.ResumeOf(auth), "resumed from the last message");
                // The replay: the edit again, then a reaction that is new.
                await live.Conn.SendAsync(edit,
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m4\",\"seq\":6,\"user\":\"carol\",\"emoji\":\"👍\",\"added\":true,\"reactions\":[{\"emoji\":\"👍\",\"count\":1}]}",
                    "{\"op\":\"resumed\",\"ch\":\"lobby\",\"recovered\":true}");
                await live.R.Until(() => live.R.Log.Any(l => l.StartsWith("resumed")), "resumed");
                Assert.Equal(1, live.R.Edits.Count, "edits raised");
                Assert.Equal(1, live.R.Reactions.Count, "reactions raised");
            }
        }

        [Test]
        static async Task MalformedPushesAreReportedNotThrown()
        {
            using (var srv = new FakeServer())
            using (var live = await ClientTests.Start(srv, "v2"))
            {
                string[] bad =
                {
                    "{\"op\":\"edited\",\"ch\":\"lobby\",\"seq\":5,\"text\":\"no id\"}",
                    "{\"op\":\"edited\",\"ch\":\"lobby\",\"id\":\"m1\",\"text\":7}",
                    "{\"op\":\"edited\",\"ch\":\"lobby\",\"id\":\"m1\",\"text\":\"x\",\"edited_at\":\"now\"}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"user\":\"bob\",\"added\":true}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"emoji\":\"👍\",\"added\":\"yes\"}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"emoji\":\"👍\",\"reactions\":\"👍\"}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"emoji\":\"👍\",\"reactions\":[5]}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"emoji\":\"👍\",\"reactions\":[{\"emoji\":\"👍\",\"count\":-1}]}",
                    "{\"op\":\"reaction\",\"ch\":\"lobby\",\"id\":\"m1\",\"emoji\":\"👍\",\"reactions\":[{\"count\":1}]}",
                    "{\"op\":\"read\",\"ch\":\"lobby\"}",
                    "{\"op\":\"read\",\"ch\":\"lobby\",\"seq\":\"53\"}",
                    "{\"op\":\"read\",\"seq\":53}",
                    "{\"op\":\"typing\",\"ch\":\"lobby\"}",
                    "{\"op\":\"typing\",\"ch\":\"lobby\",\"user\":5}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"reply_to\":5}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"quote\":\"m1\"}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"quote\":{\"text\":\"no id\"}}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"attachments\":{}}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"attachments\":[1]}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"attachments\":[{\"type\":\"image\"}]}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"attachments\":[{\"type\":\"image\",\"url\":\"https://x/\",\"width\":-4}]}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"attachments\":[{\"type\":\"image\",\"url\":\"https://x/\",\"height\":99999999999}]}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"reactions\":[{\"emoji\":\"x\",\"count\":1.5}]}",
                    "{\"op\":\"msg\",\"ch\":\"lobby\",\"id\":\"m2\",\"seq\":2,\"text\":\"a\",\"ts\":1,\"edited_at\":\"yesterday\"}",
                };
                foreach (var b in bad) await live.Conn.SendAsync(b);
                await live.Conn.SendAsync(ClientTests.Msg("lobby", "still here", 3, 0));
                await live.R.Until(() => live.R.Messages.Count == 1, "the good message");
                Assert.Equal(bad.Length, live.R.Errors.Count, "bad_frame errors (" + string.Join(" | ", live.R.Errors) + ")");
                Assert.True(live.R.Errors.All(e => e.Code == ErrorCodes.BadFrame), "every error is bad_frame");
                Assert.Equal("still here", live.R.Messages[0].Text, "the good message");
                Assert.Equal(0, live.R.Edits.Count + live.R.Reactions.Count, "no change raised");
                Assert.Equal(3L, live.C.LastSeqs["lobby"], "the bad messages moved nothing");

                // A ready with bad players' members still counts; the bad parts are reported.
                live.Conn.Dispose();
                live.Conn = await srv.AcceptAsync();
                await live.Conn.ExpectOpAsync("auth");
                await live.Conn.SendAsync("{\"op\":\"ready\",\"user\":\"alice\",\"channels\":[],\"server_time\":1,\"unread\":{\"lobby\":5},\"blocks\":\"troll\"}");
                await live.R.Until(() => live.C.State == ClientState.Connected && live.R.Errors.Count == bad.Length + 1, "the ready's error");
                Assert.Equal("alice", live.C.Ready.User, "the ready");
                await ClientTests.Ping(live);
            }
        }
    }
}
