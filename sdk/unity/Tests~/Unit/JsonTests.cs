using System;
using System.Linq;
using System.Text;
using Kaiwa;

namespace Kaiwa.Tests
{
    internal static class JsonTests
    {
        [Test]
        static void ReadsEveryKind()
        {
            var v = JsonValue.Parse(" {\"s\":\"x\", \"n\": -12.5e+3 ,\"i\":42,\"t\":true,\"f\":false,\"z\":null,\"a\":[1,[2,{}],[]],\"o\":{\"k\":{}}} ");
            Assert.Equal(JsonKind.Object, v.Kind, "kind");
            Assert.Seq(new[] { "s", "n", "i", "t", "f", "z", "a", "o" }, v.Members.Select(m => m.Key), "member order");
            Assert.Equal("x", v["s"].AsString, "s");
            double d;
            Assert.True(v["n"].TryGetDouble(out d) && d == -12500, "n as a double");
            long i;
            Assert.True(v["i"].TryGetInt64(out i) && i == 42, "i");
            Assert.Equal(JsonKind.True, v["t"].Kind, "t");
            Assert.Equal(JsonKind.False, v["f"].Kind, "f");
            Assert.True(v["z"].IsNull, "z");
            Assert.Equal(3, v["a"].Items.Count, "a's items");
            Assert.Equal(JsonKind.Object, v["a"].Items[1].Items[1].Kind, "a[1][1]");
            Assert.Equal(0, v["a"].Items[2].Items.Count, "a[2]");
            Assert.Equal(null, v["missing"], "a missing member");
            Assert.Equal(null, v["a"]["x"], "a member of an array");
            Assert.Equal(null, v["i"].AsString, "a number as a string");
            foreach (var scalar in new[] { "0", "-0", "1.5", "1E9", "\"\"", "true", "null", "[]", "{}" })
            {
                Assert.Equal(scalar, JsonValue.Parse(scalar).Raw, "the raw text of " + scalar);
            }
        }

        [Test]
        static void KeepsTheSourceTextOfEveryValue()
        {
            string data = "{ \"b\" : [1, 2.50, \"\\u00e9\"] , \"a\":null }";
            var v = JsonValue.Parse("{\"op\":\"msg\",\"data\":" + data + ",\"x\":1}");
            Assert.Equal(data, v["data"].Raw, "data's raw text");
            Assert.Equal("[1, 2.50, \"\\u00e9\"]", v["data"]["b"].Raw, "a nested raw text");
            Assert.Equal("é", v["data"]["b"].Items[2].AsString, "the decoded string");
        }

        [Test]
        static void DecodesEscapes()
        {
            var v = JsonValue.Parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4F1A\", \"\\ud83d\\ude00\", \"\\ud83d\", \"\\ude00x\", \"\\ud83d\\u0041\", \"日本語😀\"]");
            Assert.Equal("a\"b\\c/d\b\f\n\r\t", v.Items[0].AsString, "simple escapes");
            Assert.Equal("é会", v.Items[1].AsString, "\\u escapes");
            Assert.Equal("😀", v.Items[2].AsString, "a surrogate pair");
            Assert.Equal("\uFFFD", v.Items[3].AsString, "a lone high surrogate");
            Assert.Equal("\uFFFDx", v.Items[4].AsString, "a lone low surrogate");
            Assert.Equal("\uFFFDA", v.Items[5].AsString, "a high surrogate before a letter");
            Assert.Equal("日本語😀", v.Items[6].AsString, "text that needs no escape");
        }

        [Test]
        static void RefusesWhatIsNotJson()
        {
            var bad = new[]
            {
                "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{a:1}", "[1 2]", "1 2",
                "01", "-01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
                "tru", "nul", "falsey", "True", "'a'", "\"abc", "\"a\nb\"", "\"a\u0001\"", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"",
                "{\"a\":1}}", "[]]", "\u00a0{}", "{\"a\":[}", "[\"a\":1]",
            };
            foreach (var s in bad)
            {
                Assert.Throws<JsonException>(() => JsonValue.Parse(s), "parse " + s.Replace("\n", "\\n"));
                Assert.True(!JsonValue.IsValid(s), "IsValid " + s);
            }
        }

        [Test]
        static void SurvivesDeepNesting()
        {
            string deep = new string('[', 100000);
            var e = Assert.Throws<JsonException>(() => JsonValue.Parse(deep), "100000 open arrays");
            Assert.True(e.Message.Contains("nested too deeply"), "the message says why: " + e.Message);
            int n = 5000;
            var v = JsonValue.Parse(new string('[', n) + new string(']', n));
            int depth = 0;
            while (v.Items.Count > 0)
            {
                v = v.Items[0];
                depth++;
            }
            Assert.Equal(n - 1, depth, "the depth read");
            Assert.Throws<JsonException>(() => JsonValue.Parse(new string('[', n) + new string(']', n - 1)), "an array left open");
        }

        [Test]
        static void ReadsIntegersExactly()
        {
            long n;
            Assert.True(JsonValue.Parse("9007199254740991").TryGetInt64(out n) && n == 9007199254740991, "2^53-1");
            Assert.True(JsonValue.Parse("9223372036854775807").TryGetInt64(out n) && n == long.MaxValue, "the largest long");
            Assert.True(JsonValue.Parse("-1").TryGetInt64(out n) && n == -1, "-1");
            Assert.True(!JsonValue.Parse("9223372036854775808").TryGetInt64(out n), "over a long");
            Assert.True(!JsonValue.Parse("1.0").TryGetInt64(out n), "a fraction");
            Assert.True(!JsonValue.Parse("1e3").TryGetInt64(out n), "an exponent");
            Assert.True(!JsonValue.Parse("\"1\"").TryGetInt64(out n), "a string");
        }

        [Test]
        static void TakesTheLastOfRepeatedNames()
        {
            var v = JsonValue.Parse("{\"a\":1,\"a\":2}");
            Assert.Equal("2", v["a"].Raw, "a");
            Assert.Equal(2, v.Members.Count, "both members are kept");
        }

        [Test]
        static void WritesEscapedText()
        {
            string s = "quote\" back\\ nl\n cr\r tab\t bs\b ff\f nul\u0000 us\u001f ls\u2028 ps\u2029 é 日本 😀 </script>";
            string json = new JsonWriter().BeginObject().Member("s", s).Member("n", -42).Member("t", true).Member("f", false)
                .Name("z").Null().Name("a").BeginArray().Number(1).String("x").Raw("{\"r\":[1, 2]}").EndArray().EndObject().ToString();
            Assert.True(json.IndexOf('\n') < 0 && json.IndexOf('\u2028') < 0 && json.IndexOf('\u0000') < 0, "no raw controls or line separators: " + json);
            Assert.True(json.Contains("\\u0000") && json.Contains("\\u001f") && json.Contains("\\u2028"), "\\u escapes: " + json);
            var v = JsonValue.Parse(json);
            Assert.Equal(s, v["s"].AsString, "the string read back");
            Assert.Equal("-42", v["n"].Raw, "n");
            Assert.Equal(JsonKind.True, v["t"].Kind, "t");
            Assert.Equal(JsonKind.False, v["f"].Kind, "f");
            Assert.True(v["z"].IsNull, "z");
            Assert.Equal("{\"r\":[1, 2]}", v["a"].Items[2].Raw, "raw JSON spliced in as it is");
            Assert.Equal("[]", new JsonWriter().BeginArray().EndArray().ToString(), "an empty array");
            Assert.Equal("{\"a\":{},\"b\":[]}", new JsonWriter().BeginObject().Name("a").BeginObject().EndObject().Name("b").BeginArray().EndArray().EndObject().ToString(), "empty containers");
        }

        [Test]
        static void WritesWhatItReadsBack()
        {
            var rnd = new Random(7);
            for (int i = 0; i < 2000; i++)
            {
                var sb = new StringBuilder();
                int len = rnd.Next(0, 40);
                for (int j = 0; j < len; j++)
                {
                    int kind = rnd.Next(4);
                    if (kind == 0) sb.Append((char)rnd.Next(0, 0x80));
                    else if (kind == 1) sb.Append((char)rnd.Next(0x80, 0xD800));
                    else if (kind == 2) sb.Append(char.ConvertFromUtf32(rnd.Next(0x10000, 0x110000)));
                    else sb.Append((char)rnd.Next(0xE000, 0x10000));
                }
                string s = sb.ToString();
                string json = new JsonWriter().BeginArray().String(s).EndArray().ToString();
                Assert.Equal(s, JsonValue.Parse(json).Items[0].AsString, "round trip " + i);
            }
        }
    }
}
