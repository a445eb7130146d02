package dsr

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// A table is one kind of record in an export, written as JSON Lines and
// CSV from the same rows.
type table struct {
	name    string
	columns []string
	rows    [][]string
	json    []any
}

func (t *table) add(obj any, row ...string) {
	t.json = append(t.json, obj)
	t.rows = append(t.rows, row)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// BuildExport writes everything held about a person into one zip: each kind
// of record as JSON Lines and as CSV, a manifest with the SHA-256 of every
// file, and for an access request a human-readable HTML page. It returns
// the zip, the number of records and the files' checksums.
func BuildExport(d cdp.DSR, b cdp.DSRBundle, now time.Time) ([]byte, int, map[string]string, error) {
	tables := exportTables(b)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	sums := map[string]string{}
	count := 0
	write := func(name string, content []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now.UTC()})
		if err != nil {
			return err
		}
		if _, err := w.Write(content); err != nil {
			return err
		}
		h := sha256.Sum256(content)
		sums[name] = hex.EncodeToString(h[:])
		return nil
	}
	type fileInfo struct {
		Name    string `json:"name"`
		Format  string `json:"format"`
		Records int    `json:"records"`
		SHA256  string `json:"sha256"`
	}
	var files []fileInfo
	for _, t := range tables {
		var jl bytes.Buffer
		for _, o := range t.json {
			line, err := json.Marshal(o)
			if err != nil {
				return nil, 0, nil, err
			}
			jl.Write(line)
			jl.WriteByte('\n')
		}
		var cb bytes.Buffer
		cw := csv.NewWriter(&cb)
		_ = cw.Write(t.columns)
		_ = cw.WriteAll(t.rows)
		cw.Flush()
		if err := cw.Error(); err != nil {
			return nil, 0, nil, err
		}
		for _, f := range []struct {
			name, format string
			content      []byte
		}{{t.name + ".jsonl", "jsonl", jl.Bytes()}, {t.name + ".csv", "csv", cb.Bytes()}} {
			if err := write(f.name, f.content); err != nil {
				return nil, 0, nil, err
			}
			files = append(files, fileInfo{Name: f.name, Format: f.format, Records: len(t.rows), SHA256: sums[f.name]})
		}
		count += len(t.rows)
	}
	if d.Type == cdp.DSRAccess {
		page, err := renderHTML(d, tables, now)
		if err != nil {
			return nil, 0, nil, err
		}
		if err := write("index.html", page); err != nil {
			return nil, 0, nil, err
		}
		files = append(files, fileInfo{Name: "index.html", Format: "html", SHA256: sums["index.html"]})
	}
	manifest, err := json.MarshalIndent(map[string]any{
		"request_id": d.ID, "type": d.Type, "regulation": d.Regulation, "generated_at": ts(now),
		"records": count, "files": files,
		"about": "Everything Custos holds about you: identities, attributes (traits), consent choices with their documents and sources, " +
			"your events, audience memberships, merges of your records, and which tools received your data and when.",
	}, "", "  ")
	if err != nil {
		return nil, 0, nil, err
	}
	if err := write("manifest.json", manifest); err != nil {
		return nil, 0, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, nil, err
	}
	return buf.Bytes(), count, sums, nil
}

func exportTables(b cdp.DSRBundle) []*table {
	ids := &table{name: "identities", columns: []string{"profile_id", "type", "value", "first_seen"}}
	traits := &table{name: "traits", columns: []string{"profile_id", "name", "value", "updated_at"}}
	groups := &table{name: "groups", columns: []string{"profile_id", "group_id", "traits", "updated_at"}}
	for _, p := range b.Profiles {
		for _, id := range p.Identities {
			ids.add(map[string]any{"profile_id": p.ID, "type": id.Type, "value": id.Value, "first_seen": ts(id.FirstSeen)},
				string(p.ID), string(id.Type), id.Value, ts(id.FirstSeen))
		}
		for _, t := range p.Traits {
			traits.add(map[string]any{"profile_id": p.ID, "name": t.Name, "value": json.RawMessage(t.Value), "updated_at": ts(t.UpdatedAt)},
				string(p.ID), t.Name, string(t.Value), ts(t.UpdatedAt))
		}
		for _, g := range p.Groups {
			gt := json.RawMessage("null")
			if len(g.Traits) > 0 {
				gt = json.RawMessage(g.Traits)
			}
			groups.add(map[string]any{"profile_id": p.ID, "group_id": g.GroupID, "traits": gt, "updated_at": ts(g.UpdatedAt)},
				string(p.ID), g.GroupID, string(gt), ts(g.UpdatedAt))
		}
	}
	consent := &table{name: "consent", columns: []string{"entry_id", "purpose", "state", "collected_at", "received_at", "source", "source_name", "document", "location", "hardware_id", "message_id"}}
	for _, e := range b.Consent {
		consent.add(map[string]any{"entry_id": e.ID, "purpose": e.Purpose, "state": e.State, "collected_at": ts(e.CollectedAt), "received_at": ts(e.ReceivedAt),
			"source": e.Source, "source_name": e.SourceName, "document": e.Document, "location": e.Location, "hardware_id": e.HardwareID, "message_id": e.MessageID},
			string(e.ID), string(e.Purpose), string(e.State), ts(e.CollectedAt), ts(e.ReceivedAt), string(e.Source), e.SourceName, e.Document, e.Location, e.HardwareID, e.MessageID)
	}
	events := &table{name: "events", columns: []string{"message_id", "type", "event", "timestamp", "received_at", "source_id", "properties", "traits", "context", "ip"}}
	sort.SliceStable(b.Events, func(i, j int) bool { return b.Events[i].Event.Timestamp.Before(b.Events[j].Event.Timestamp) })
	for _, se := range b.Events {
		ev := se.Event
		raw := func(m json.RawMessage) json.RawMessage {
			if len(m) == 0 {
				return json.RawMessage("null")
			}
			return m
		}
		events.add(map[string]any{"message_id": ev.MessageID, "type": ev.Type, "event": ev.Name, "timestamp": ts(ev.Timestamp), "received_at": ts(ev.ReceivedAt),
			"source_id": ev.SourceID, "properties": raw(ev.Properties), "traits": raw(ev.Traits), "context": raw(ev.Context), "ip": ev.IP},
			ev.MessageID, string(ev.Type), ev.Name, ts(ev.Timestamp), ts(ev.ReceivedAt), string(ev.SourceID), string(raw(ev.Properties)), string(raw(ev.Traits)), string(raw(ev.Context)), ev.IP)
	}
	audiences := &table{name: "audiences", columns: []string{"audience_id", "name", "joined_at"}}
	merges := &table{name: "merges", columns: []string{"merge_id", "survivor_profile_id", "merged_profile_id", "rule", "message_id", "merged_at", "split_at"}}
	for _, m := range b.Merges {
		merges.add(map[string]any{"merge_id": m.ID, "survivor_profile_id": m.Survivor, "merged_profile_id": m.Merged, "rule": m.Rule, "message_id": m.MessageID,
			"merged_at": ts(m.At), "split_at": ts(m.UndoneAt)}, string(m.ID), string(m.Survivor), string(m.Merged), m.Rule, m.MessageID, ts(m.At), ts(m.UndoneAt))
	}
	recipients := &table{name: "recipients", columns: []string{"destination_id", "kinds", "deliveries", "first_delivered_at", "last_delivered_at"}}
	for _, r := range b.Recipients {
		recipients.add(map[string]any{"destination_id": r.Destination, "kinds": r.Kinds, "deliveries": r.Count, "first_delivered_at": ts(r.First), "last_delivered_at": ts(r.Last)},
			string(r.Destination), fmt.Sprint(r.Kinds), fmt.Sprint(r.Count), ts(r.First), ts(r.Last))
	}
	return []*table{ids, traits, groups, consent, events, audiences, merges, recipients}
}

var page = template.Must(template.New("access").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your data</title>
<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%;margin-bottom:2rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;font-size:.9rem;vertical-align:top;word-break:break-word}th{background:#f3f3f3}</style></head>
<body><h1>Your data</h1>
<p>This is everything we hold about you, as of {{.Generated}} (request {{.ID}}, {{.Regulation}}). The same records are in this archive as JSON Lines and CSV files, for use in other software.</p>
{{range .Tables}}<h2>{{.Title}} ({{len .Rows}})</h2>
{{if .Rows}}<table><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{else}}<p>None.</p>{{end}}
{{end}}</body></html>
`))

var titles = map[string]string{
	"identities": "How we recognise you", "traits": "What we know about you", "groups": "Accounts and groups",
	"consent": "Your consent choices", "events": "Your activity", "audiences": "Audiences you are in",
	"merges": "Records of yours we combined", "recipients": "Who received your data",
}

func renderHTML(d cdp.DSR, tables []*table, now time.Time) ([]byte, error) {
	type tbl struct {
		Title   string
		Columns []string
		Rows    [][]string
	}
	data := struct {
		Generated, ID, Regulation string
		Tables                    []tbl
	}{Generated: now.UTC().Format("2 January 2006 15:04 MST"), ID: d.ID, Regulation: d.Regulation}
	for _, t := range tables {
		data.Tables = append(data.Tables, tbl{Title: titles[t.name], Columns: t.columns, Rows: t.rows})
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, data)
	return buf.Bytes(), err
}
