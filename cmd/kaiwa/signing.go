package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kaiwa-chat/kaiwa"
)

// signingKeys is `kaiwa tenant signing-keys`: it adds a key (add, a JSON
// object as POST /signing-keys takes), deletes one (del, a kid), or lists
// the tenant's keys, never their secrets.
func signingKeys(ctx context.Context, core *kaiwa.Core, store kaiwa.SigningStore, t kaiwa.TenantID, add, del string, asJSON bool, stdout io.Writer) error {
	switch {
	case add != "" && del != "":
		return usageError{"--add and --delete go one at a time"}
	case add != "":
		var body struct {
			Kid       string `json:"kid"`
			Alg       string `json:"alg"`
			Secret    string `json:"secret"`
			PublicKey string `json:"public_key"`
		}
		if err := json.Unmarshal([]byte(add), &body); err != nil {
			return usageError{fmt.Sprintf("--add: %v", err)}
		}
		k, err := core.AddSigningKey(ctx, kaiwa.ActorCLI, t, kaiwa.SigningKey{
			Kid: body.Kid, Alg: body.Alg, Secret: []byte(body.Secret), PublicKey: body.PublicKey,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signing key %s (%s) added to tenant %s\n", k.Kid, k.Alg, t)
		return nil
	case del != "":
		if err := core.DeleteSigningKey(ctx, kaiwa.ActorCLI, t, del); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signing key %s of tenant %s deleted\n", del, t)
		return nil
	}
	keys, err := store.SigningKeys(ctx, t)
	if err != nil {
		return err
	}
	for i := range keys {
		keys[i] = keys[i].Public()
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"tenant": t, "keys": keys})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Kid, k.Alg, stamp(k.CreatedAt))
	}
	return tw.Flush()
}
