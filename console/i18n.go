package console

import (
	"html/template"
	"strconv"
	"time"
)

// messages holds every text of the console, in English and Japanese.
var messages = map[string][2]string{
	"title":                {"Kaiwa console", "Kaiwa コンソール"},
	"nav.live":             {"Live", "ライブ"},
	"nav.logs":             {"Logs", "ログ"},
	"nav.channels":         {"Channels", "チャンネル"},
	"nav.ngwords":          {"NG words", "NGワード"},
	"nav.user":             {"User", "ユーザー"},
	"nav.login":            {"Log in", "ログイン"},
	"nav.error":            {"Error", "エラー"},
	"logout":               {"Log out", "ログアウト"},
	"tenant":               {"Tenant", "テナント"},
	"login.title":          {"Log in", "ログイン"},
	"login.key":            {"API key", "APIキー"},
	"login.help":           {"Log in with one of your title's API keys (TENANT:SECRET). It is checked once and never stored; the console keeps a signed session cookie instead.", "タイトルのAPIキー（TENANT:SECRET）でログインします。キーは一度だけ確認され、保存されません。以後は署名付きのセッションCookieを使います。"},
	"login.submit":         {"Log in", "ログイン"},
	"error":                {"Error", "エラー"},
	"live.sessions":        {"Sessions now", "現在のセッション"},
	"live.persec":          {"Messages / s (last minute)", "メッセージ／秒（直近1分）"},
	"live.messages":        {"Messages", "メッセージ"},
	"live.deliveries":      {"Deliveries", "配信"},
	"live.minute":          {"last minute", "直近1分"},
	"live.hour":            {"last hour", "直近1時間"},
	"live.rtt":             {"RTT of v2 clients (5 min)", "v2クライアントのRTT（5分）"},
	"live.samples":         {"samples", "サンプル"},
	"live.ngblocked":       {"NG blocked", "NGで拒否"},
	"live.ngmasked":        {"NG masked", "NGで伏せ字"},
	"live.slow":            {"Slow-consumer closes", "低速クライアントの切断"},
	"live.lag":             {"Log writer lag", "ログ書き込みの遅れ"},
	"live.busiest":         {"Busiest channels (last 5 minutes)", "活発なチャンネル（直近5分）"},
	"live.processes":       {"Processes answering", "応答したプロセス"},
	"live.refresh":         {"Refreshes every 5 seconds.", "5秒ごとに更新します。"},
	"live.nostats":         {"Stats unavailable", "統計を取得できません"},
	"logs.kind":            {"Log", "種類"},
	"logs.messages":        {"Messages", "メッセージ"},
	"logs.events":          {"Events", "イベント"},
	"logs.channel":         {"Channel", "チャンネル"},
	"logs.user":            {"User", "ユーザー"},
	"logs.type":            {"Event type", "イベント種別"},
	"logs.since":           {"Since (UTC)", "開始（UTC）"},
	"logs.until":           {"Until (UTC)", "終了（UTC）"},
	"logs.order":           {"Order", "並び順"},
	"logs.desc":            {"Newest first", "新しい順"},
	"logs.asc":             {"Oldest first", "古い順"},
	"logs.limit":           {"Per page", "件数"},
	"logs.filter":          {"Show", "表示"},
	"logs.next":            {"Next page", "次のページ"},
	"logs.time":            {"Time (UTC)", "時刻（UTC）"},
	"logs.text":            {"Text", "本文"},
	"logs.detail":          {"Detail", "詳細"},
	"logs.none":            {"Nothing matches.", "該当するものはありません。"},
	"logs.system":          {"system", "システム"},
	"logs.delete":          {"Delete", "削除"},
	"logs.eventsnote":      {"Events are listed newest first.", "イベントは新しい順に表示されます。"},
	"user.sanctions":       {"Sanctions in force", "現在の制裁"},
	"user.nosanctions":     {"None.", "なし。"},
	"user.kind":            {"Kind", "種類"},
	"user.until":           {"Until", "期限"},
	"user.lifted":          {"until lifted", "解除まで"},
	"user.reason":          {"Reason", "理由"},
	"user.kick":            {"Kick", "キック"},
	"user.mute":            {"Mute", "ミュート"},
	"user.ban":             {"Ban", "BAN"},
	"user.unmute":          {"Unmute", "ミュート解除"},
	"user.unban":           {"Unban", "BAN解除"},
	"user.duration":        {"Duration", "期間"},
	"user.recent":          {"Recent messages", "最近のメッセージ"},
	"user.events":          {"Recent events", "最近のイベント"},
	"user.all":             {"All of this user's log", "このユーザーのログをすべて見る"},
	"user.open":            {"Open a user", "ユーザーを開く"},
	"dur.10":               {"10 minutes", "10分"},
	"dur.60":               {"1 hour", "1時間"},
	"dur.1440":             {"1 day", "1日"},
	"dur.10080":            {"7 days", "7日"},
	"dur.0":                {"Until lifted", "解除するまで"},
	"ng.policy":            {"Policy", "ポリシー"},
	"ng.reject":            {"reject: refuse the message", "reject：メッセージを拒否"},
	"ng.mask":              {"mask: replace the word with *", "mask：単語を＊で伏せる"},
	"ng.setpolicy":         {"Set policy", "ポリシーを変更"},
	"ng.words":             {"NG words", "NGワード"},
	"ng.allow":             {"Allow-list (harmless longer words)", "許可リスト（無害な長い語）"},
	"ng.add":               {"Add", "追加"},
	"ng.addhelp":           {"One entry a line.", "1行に1語。"},
	"ng.to":                {"Add to", "追加先"},
	"ng.remove":            {"Remove", "削除"},
	"ng.empty":             {"The list is empty.", "リストは空です。"},
	"ng.try":               {"Try a sentence", "文を試す"},
	"ng.trybutton":         {"Try", "試す"},
	"ng.folded":            {"As the matcher folds it", "照合用に正規化した形"},
	"ng.result":            {"Result", "結果"},
	"ng.accepted":          {"Accepted: no NG word.", "受理：NGワードはありません。"},
	"ng.rejected":          {"Rejected (ng_word): the message would not be sent.", "拒否（ng_word）：メッセージは送信されません。"},
	"ng.masked":            {"Masked: the message would be sent as", "伏せ字：次のように送信されます"},
	"ng.matched":           {"Matched", "一致"},
	"ng.entry":             {"List entry (folded)", "リストの語（正規化）"},
	"ch.name":              {"Name", "名前"},
	"ch.kind":              {"Kind", "種類"},
	"ch.title":             {"Title", "タイトル"},
	"ch.members":           {"Members", "メンバー数"},
	"ch.created":           {"Created (UTC)", "作成（UTC）"},
	"ch.create":            {"Create or update a channel", "チャンネルを作成・更新"},
	"ch.save":              {"Save", "保存"},
	"ch.delete":            {"Delete", "削除"},
	"ch.none":              {"No channels yet.", "チャンネルはまだありません。"},
	"ch.logs":              {"Log", "ログ"},
	"done.deleted":         {"The message was deleted.", "メッセージを削除しました。"},
	"done.kicked":          {"The user was kicked.", "ユーザーをキックしました。"},
	"done.banned":          {"The user was banned.", "ユーザーをBANしました。"},
	"done.muted":           {"The user was muted.", "ユーザーをミュートしました。"},
	"done.unbanned":        {"The ban was lifted.", "BANを解除しました。"},
	"done.unmuted":         {"The mute was lifted.", "ミュートを解除しました。"},
	"done.ng_added":        {"Added to the NG list.", "NGリストに追加しました。"},
	"done.ng_removed":      {"Removed from the NG list.", "NGリストから削除しました。"},
	"done.ng_policy":       {"The policy was changed.", "ポリシーを変更しました。"},
	"done.channel_saved":   {"The channel was saved.", "チャンネルを保存しました。"},
	"done.channel_deleted": {"The channel was deleted.", "チャンネルを削除しました。"},
}

// translate returns key's text in lang ("ja" or "en"); the key itself
// when it has none.
func translate(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if lang == "ja" {
		return m[1]
	}
	return m[0]
}

// hasKey reports whether key has a text.
func hasKey(key string) bool { _, ok := messages[key]; return ok }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	// ts formats ms since the epoch in UTC.
	"ts": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") },
	// utc formats a time in UTC, "" when zero.
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"itoa": strconv.Itoa,
}
