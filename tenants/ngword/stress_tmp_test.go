package ngword
import ("testing";"math/rand/v2";"time";"fmt")
func TestStressTmp(t *testing.T){
  rng := rand.New(rand.NewPCG(1,2))
  pool := []string{"a","f","u","c","k"," ",".","\xff","\xe3","\u3099","\u309b","は","ﾊ","ﾞ","ᄀ","ᅡ","\u0301","\u034f","\u200b","İ","ß","ヷ","㍻","\u0e33","𝐟","σ","Σ","ς","\u0345","ΐ","ǅ","ﬁ","ﾟ","゜","ｶ","0","ㇰ","\U000E0041","한","ᆨ","\u0f73","\u0f81","\u0344"}
  m, _ := fuzzMatcher()
  for i := 0; i < 200000; i++ {
    n := rng.IntN(12)
    s := ""
    for j := 0; j < n; j++ { s += pool[rng.IntN(len(pool))] }
    done := make(chan bool)
    go func(){ Normalize(s); m.Find(s); n := Normalize(s); if Normalize(n) != n { fmt.Printf("IDEM %q %q %q\n", s, n, Normalize(n)) }; done <- true }()
    select { case <-done: case <-time.After(2*time.Second): t.Fatalf("hang on %q", s) }
  }
}
