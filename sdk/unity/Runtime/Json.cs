using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Kaiwa
{
    // A small JSON reader and writer, enough for the Kaiwa protocol.
    //
    // Why not JsonUtility or Newtonsoft: Unity's JsonUtility reads only
    // fixed [Serializable] shapes (no dictionaries, no arbitrary objects
    // such as a message's "data" or ready's "seqs", no way to tell an
    // absent member from a default one), and Newtonsoft.Json is not
    // shipped with every Unity version or platform. The SDK therefore
    // depends on nothing but the base class library.
    //
    // The reader is strict (RFC 8259): anything else is a JsonException,
    // which the client reports instead of throwing. It is iterative, so no
    // input can exhaust the stack, and every value remembers where it sits
    // in the source text, so a message's "data" is relayed as the exact
    // text the server sent.

    /// <summary>The kind of a <see cref="JsonValue"/>.</summary>
    internal enum JsonKind
    {
        Null,
        False,
        True,
        Number,
        String,
        Array,
        Object,
    }

    /// <summary>The input is not JSON, or not the JSON expected.</summary>
    internal sealed class JsonException : FormatException
    {
        public JsonException(string message) : base(message) { }
    }

    /// <summary>
    /// One parsed JSON value: its kind, its decoded content, and the span of
    /// source text it came from. Immutable once parsed.
    /// </summary>
    internal sealed class JsonValue
    {
        /// <summary>The most nested arrays and objects <see cref="Parse"/> accepts.</summary>
        public const int MaxDepth = 10000;

        static readonly List<JsonValue> NoItems = new List<JsonValue>(0);
        static readonly List<KeyValuePair<string, JsonValue>> NoMembers = new List<KeyValuePair<string, JsonValue>>(0);

        readonly string source;
        readonly int start;
        int end;
        string text; // a string's decoded content
        List<JsonValue> items;
        List<KeyValuePair<string, JsonValue>> members;

        JsonValue(JsonKind kind, string source, int start)
        {
            Kind = kind;
            this.source = source;
            this.start = start;
        }

        public JsonKind Kind { get; }

        /// <summary>The value's text exactly as in the source.</summary>
        public string Raw { get { return source.Substring(start, end - start); } }

        /// <summary>An array's elements (empty for any other kind).</summary>
        public IReadOnlyList<JsonValue> Items { get { return items ?? NoItems; } }

        /// <summary>An object's members in source order (empty for any other kind).</summary>
        public IReadOnlyList<KeyValuePair<string, JsonValue>> Members { get { return members ?? NoMembers; } }

        /// <summary>
        /// An object's member named key (the last one, when the name repeats),
        /// or null when there is none or this is not an object.
        /// </summary>
        public JsonValue this[string key]
        {
            get
            {
                if (members == null) return null;
                for (int i = members.Count - 1; i >= 0; i--)
                {
                    if (members[i].Key == key) return members[i].Value;
                }
                return null;
            }
        }

        public bool IsNull { get { return Kind == JsonKind.Null; } }

        /// <summary>A string's content; null for any other kind.</summary>
        public string AsString { get { return Kind == JsonKind.String ? text : null; } }

        /// <summary>
        /// Reads an integer written with digits only (an optional minus, no
        /// fraction or exponent) that fits a long.
        /// </summary>
        public bool TryGetInt64(out long value)
        {
            value = 0;
            if (Kind != JsonKind.Number) return false;
            for (int i = start; i < end; i++)
            {
                char c = source[i];
                if (c == '.' || c == 'e' || c == 'E') return false;
            }
            return long.TryParse(source.Substring(start, end - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
        }

        /// <summary>Reads a number of any form as a double.</summary>
        public bool TryGetDouble(out double value)
        {
            value = 0;
            return Kind == JsonKind.Number &&
                double.TryParse(source.Substring(start, end - start), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }

        public override string ToString() { return Raw; }

        /// <summary>Parses text as one JSON value with nothing but whitespace around it.</summary>
        /// <exception cref="JsonException">text is not JSON.</exception>
        public static JsonValue Parse(string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            return new Parser(text).ParseDocument();
        }

        /// <summary>Reports whether text is one JSON value.</summary>
        public static bool IsValid(string text)
        {
            if (text == null) return false;
            try
            {
                Parse(text);
                return true;
            }
            catch (JsonException)
            {
                return false;
            }
        }

        // Parser reads a document without recursion: containers being read
        // are on an explicit stack.
        struct Parser
        {
            readonly string s;
            int pos;
            readonly StringBuilder sb;

            public Parser(string s)
            {
                this.s = s;
                pos = 0;
                sb = new StringBuilder();
            }

            JsonException Error(string what)
            {
                return new JsonException(what + " at offset " + pos.ToString(CultureInfo.InvariantCulture));
            }

            void SkipSpace()
            {
                while (pos < s.Length)
                {
                    char c = s[pos];
                    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
                    pos++;
                }
            }

            public JsonValue ParseDocument()
            {
                var stack = new List<JsonValue>();
                string key = null; // the member name just read, in an object
                JsonValue root = null;
                SkipSpace();
                while (true)
                {
                    // Read one value, or open a container.
                    if (pos >= s.Length) throw Error("unexpected end of input");
                    JsonValue v;
                    char c = s[pos];
                    bool opened = false;
                    switch (c)
                    {
                        case '{':
                            v = new JsonValue(JsonKind.Object, s, pos) { members = new List<KeyValuePair<string, JsonValue>>() };
                            pos++;
                            opened = true;
                            break;
                        case '[':
                            v = new JsonValue(JsonKind.Array, s, pos) { items = new List<JsonValue>() };
                            pos++;
                            opened = true;
                            break;
                        case '"':
                            v = new JsonValue(JsonKind.String, s, pos);
                            v.text = ReadString();
                            v.end = pos;
                            break;
                        case 't':
                            v = Literal("true", JsonKind.True);
                            break;
                        case 'f':
                            v = Literal("false", JsonKind.False);
                            break;
                        case 'n':
                            v = Literal("null", JsonKind.Null);
                            break;
                        default:
                            if (c == '-' || (c >= '0' && c <= '9'))
                            {
                                v = new JsonValue(JsonKind.Number, s, pos);
                                ReadNumber();
                                v.end = pos;
                                break;
                            }
                            throw Error("unexpected character '" + Printable(c) + "'");
                    }
                    // Place it in its container.
                    if (stack.Count > 0)
                    {
                        var parent = stack[stack.Count - 1];
                        if (parent.Kind == JsonKind.Array) parent.items.Add(v);
                        else parent.members.Add(new KeyValuePair<string, JsonValue>(key, v));
                    }
                    else
                    {
                        root = v;
                    }
                    if (opened)
                    {
                        if (stack.Count >= MaxDepth) throw Error("nested too deeply");
                        stack.Add(v);
                        SkipSpace();
                        char close = v.Kind == JsonKind.Array ? ']' : '}';
                        if (pos < s.Length && s[pos] == close)
                        {
                            pos++;
                            v.end = pos;
                            stack.RemoveAt(stack.Count - 1);
                        }
                        else
                        {
                            if (v.Kind == JsonKind.Object) key = ReadKey();
                            continue;
                        }
                    }
                    // After a value: a comma, or the end of containers.
                    while (true)
                    {
                        SkipSpace();
                        if (stack.Count == 0)
                        {
                            if (pos != s.Length) throw Error("unexpected text after the value");
                            return root;
                        }
                        var top = stack[stack.Count - 1];
                        if (pos >= s.Length) throw Error("unexpected end of input");
                        char d = s[pos];
                        if (d == ',')
                        {
                            pos++;
                            SkipSpace();
                            if (top.Kind == JsonKind.Object) key = ReadKey();
                            break;
                        }
                        if ((top.Kind == JsonKind.Array && d == ']') || (top.Kind == JsonKind.Object && d == '}'))
                        {
                            pos++;
                            top.end = pos;
                            stack.RemoveAt(stack.Count - 1);
                            continue;
                        }
                        throw Error(top.Kind == JsonKind.Array ? "expected ',' or ']'" : "expected ',' or '}'");
                    }
                }
            }

            // ReadKey reads `"name" :` and the space after it.
            string ReadKey()
            {
                if (pos >= s.Length || s[pos] != '"') throw Error("expected a member name");
                string k = ReadString();
                SkipSpace();
                if (pos >= s.Length || s[pos] != ':') throw Error("expected ':'");
                pos++;
                SkipSpace();
                return k;
            }

            JsonValue Literal(string word, JsonKind kind)
            {
                if (string.CompareOrdinal(s, pos, word, 0, word.Length) != 0) throw Error("invalid literal");
                var v = new JsonValue(kind, s, pos);
                pos += word.Length;
                v.end = pos;
                return v;
            }

            void ReadNumber()
            {
                if (s[pos] == '-') pos++;
                if (pos >= s.Length) throw Error("invalid number");
                if (s[pos] == '0') pos++;
                else if (s[pos] >= '1' && s[pos] <= '9') Digits();
                else throw Error("invalid number");
                if (pos < s.Length && s[pos] == '.')
                {
                    pos++;
                    if (pos >= s.Length || s[pos] < '0' || s[pos] > '9') throw Error("invalid number");
                    Digits();
                }
                if (pos < s.Length && (s[pos] == 'e' || s[pos] == 'E'))
                {
                    pos++;
                    if (pos < s.Length && (s[pos] == '+' || s[pos] == '-')) pos++;
                    if (pos >= s.Length || s[pos] < '0' || s[pos] > '9') throw Error("invalid number");
                    Digits();
                }
            }

            void Digits()
            {
                while (pos < s.Length && s[pos] >= '0' && s[pos] <= '9') pos++;
            }

            // ReadString reads a string literal at pos and returns its content.
            // An escaped lone surrogate becomes U+FFFD, as in Go's decoder.
            string ReadString()
            {
                pos++; // the opening quote
                int runStart = pos;
                while (pos < s.Length)
                {
                    char c = s[pos];
                    if (c == '"')
                    {
                        string plain = s.Substring(runStart, pos - runStart);
                        pos++;
                        return plain;
                    }
                    if (c == '\\' || c < 0x20) break;
                    pos++;
                }
                sb.Length = 0;
                sb.Append(s, runStart, pos - runStart);
                while (true)
                {
                    if (pos >= s.Length) throw Error("unterminated string");
                    char c = s[pos];
                    if (c == '"')
                    {
                        pos++;
                        return sb.ToString();
                    }
                    if (c < 0x20) throw Error("control character in a string");
                    if (c != '\\')
                    {
                        sb.Append(c);
                        pos++;
                        continue;
                    }
                    pos++;
                    if (pos >= s.Length) throw Error("unterminated string");
                    char e = s[pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            int u = Hex4();
                            if (u >= 0xD800 && u <= 0xDBFF && pos + 1 < s.Length && s[pos] == '\\' && s[pos + 1] == 'u')
                            {
                                int save = pos;
                                pos += 2;
                                int lo = Hex4();
                                if (lo >= 0xDC00 && lo <= 0xDFFF)
                                {
                                    sb.Append((char)u).Append((char)lo);
                                    break;
                                }
                                pos = save;
                            }
                            sb.Append(u >= 0xD800 && u <= 0xDFFF ? '\uFFFD' : (char)u);
                            break;
                        default:
                            pos--;
                            throw Error("invalid escape");
                    }
                }
            }

            int Hex4()
            {
                if (pos + 4 > s.Length) throw Error("invalid \\u escape");
                int v = 0;
                for (int i = 0; i < 4; i++)
                {
                    char h = s[pos + i];
                    int d;
                    if (h >= '0' && h <= '9') d = h - '0';
                    else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
                    else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
                    else throw Error("invalid \\u escape");
                    v = v * 16 + d;
                }
                pos += 4;
                return v;
            }

            static string Printable(char c)
            {
                return c < 0x20 || c > 0x7e ? "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture) : c.ToString();
            }
        }
    }

    /// <summary>
    /// Writes JSON text: objects, arrays, strings, numbers, booleans, and raw
    /// JSON spliced in as given. It checks nothing but its own commas: write
    /// balanced containers and a name before each member's value.
    /// </summary>
    internal sealed class JsonWriter
    {
        readonly StringBuilder sb = new StringBuilder(128);
        bool needComma;

        public JsonWriter BeginObject() { Sep(); sb.Append('{'); needComma = false; return this; }
        public JsonWriter EndObject() { sb.Append('}'); needComma = true; return this; }
        public JsonWriter BeginArray() { Sep(); sb.Append('['); needComma = false; return this; }
        public JsonWriter EndArray() { sb.Append(']'); needComma = true; return this; }

        /// <summary>Writes a member name; the value follows.</summary>
        public JsonWriter Name(string name)
        {
            Sep();
            Quote(name);
            sb.Append(':');
            needComma = false;
            return this;
        }

        public JsonWriter String(string value)
        {
            Sep();
            if (value == null) sb.Append("null");
            else Quote(value);
            needComma = true;
            return this;
        }

        public JsonWriter Number(long value)
        {
            Sep();
            sb.Append(value.ToString(CultureInfo.InvariantCulture));
            needComma = true;
            return this;
        }

        public JsonWriter Bool(bool value)
        {
            Sep();
            sb.Append(value ? "true" : "false");
            needComma = true;
            return this;
        }

        public JsonWriter Null()
        {
            Sep();
            sb.Append("null");
            needComma = true;
            return this;
        }

        /// <summary>Writes json, a JSON value's text, as it is.</summary>
        public JsonWriter Raw(string json)
        {
            Sep();
            sb.Append(json);
            needComma = true;
            return this;
        }

        // Shorthands for a member.
        public JsonWriter Member(string name, string value) { return Name(name).String(value); }
        public JsonWriter Member(string name, long value) { return Name(name).Number(value); }
        public JsonWriter Member(string name, bool value) { return Name(name).Bool(value); }

        public override string ToString() { return sb.ToString(); }

        void Sep()
        {
            if (needComma) sb.Append(',');
        }

        void Quote(string s)
        {
            sb.Append('"');
            int run = 0;
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                string esc = null;
                switch (c)
                {
                    case '"': esc = "\\\""; break;
                    case '\\': esc = "\\\\"; break;
                    case '\n': esc = "\\n"; break;
                    case '\r': esc = "\\r"; break;
                    case '\t': esc = "\\t"; break;
                    case '\b': esc = "\\b"; break;
                    case '\f': esc = "\\f"; break;
                    default:
                        // Controls, and the line separators JavaScript
                        // source cannot hold.
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                        {
                            esc = "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture);
                        }
                        break;
                }
                if (esc == null) continue;
                sb.Append(s, run, i - run).Append(esc);
                run = i + 1;
            }
            sb.Append(s, run, s.Length - run).Append('"');
        }
    }
}
