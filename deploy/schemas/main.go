// Command schemas writes the JSON schemas that kubeconform validates
// deploy/kubernetes against, without the network: Kubernetes' own OpenAPI
// v3 documents and the InferencePool and HTTPRoute CRDs, all taken from
// pinned Go modules in the module cache (go mod download fetches them
// through the Go proxy), converted to kubeconform's file layout
// (KIND-GROUP-VERSION.json, lower case) as its openapi2jsonschema script
// does: references resolved within one file, int-or-string as string or
// integer, nullable fields allowing null, and with -strict
// additionalProperties false on every object that lists its properties.
//
//	go run . -out DIR [-strict]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// The pinned sources. Kubernetes' minor version is the oldest cluster the
// manifests are meant for; the inference extension is the one deploy/epp-test
// tests against.
const (
	kubernetesModule = "k8s.io/kubernetes@v1.35.3"
	inferenceModule  = "sigs.k8s.io/gateway-api-inference-extension@v1.5.0"
	gatewayModule    = "sigs.k8s.io/gateway-api@v1.4.1"
)

// openAPIDocs are the Kubernetes API groups the manifests use.
var openAPIDocs = []string{
	"api__v1_openapi.json",
	"apis__apps__v1_openapi.json",
	"apis__autoscaling__v2_openapi.json",
	"apis__rbac.authorization.k8s.io__v1_openapi.json",
	"apis__policy__v1_openapi.json",
}

var crds = []struct{ module, path string }{
	{inferenceModule, "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"},
	{gatewayModule, "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"},
}

func main() {
	out := flag.String("out", "", "directory to write the schemas to")
	strict := flag.Bool("strict", false, "disallow properties a schema does not list (kubeconform -strict)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: schemas -out DIR [-strict]")
		os.Exit(2)
	}
	if err := run(*out, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "schemas:", err)
		os.Exit(1)
	}
}

func run(out string, strict bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	k8s, err := moduleDir(kubernetesModule)
	if err != nil {
		return err
	}
	for _, doc := range openAPIDocs {
		c, err := openAPIKinds(filepath.Join(k8s, "api", "openapi-spec", "v3", doc), out, strict)
		if err != nil {
			return err
		}
		n += c
	}
	for _, c := range crds {
		dir, err := moduleDir(c.module)
		if err != nil {
			return err
		}
		k, err := crdKinds(filepath.Join(dir, c.path), out, strict)
		if err != nil {
			return err
		}
		n += k
	}
	fmt.Printf("schemas: %d kinds written to %s\n", n, out)
	return nil
}

// moduleDir downloads a module (through GOPROXY, into the module cache) and
// returns its directory.
func moduleDir(modVer string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVer)
	cmd.Dir = os.TempDir() // outside any module: no go.mod is changed
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVer, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(b, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVer, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", modVer, info.Error)
	}
	return info.Dir, nil
}

// openAPIKinds writes one schema per kind (a schema carrying
// x-kubernetes-group-version-kind) of a Kubernetes OpenAPI v3 document,
// each with the document's schemas as its definitions.
func openAPIKinds(path, out string, strict bool) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defs := map[string]any{}
	for name, s := range doc.Components.Schemas {
		defs[name] = convert(s, strict)
	}
	n := 0
	for name, s := range doc.Components.Schemas {
		if strings.HasPrefix(name, "io.k8s.apimachinery.") {
			continue // DeleteOptions, WatchEvent, ...: not resources
		}
		m, _ := s.(map[string]any)
		gvks, _ := m["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if kind == "" || version == "" || strings.HasSuffix(kind, "List") || version == "v1" && kind == "Status" {
				continue
			}
			schema := map[string]any{
				"$schema":     "http://json-schema.org/draft-04/schema#",
				"allOf":       []any{map[string]any{"$ref": "#/definitions/" + name}},
				"definitions": defs,
			}
			if err := write(out, kind, group, version, schema); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// crdKinds writes the schema of every served version of a CRD.
func crdKinds(path, out string, strict bool) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var crd struct {
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	n := 0
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		schema, _ := convert(v.Schema.OpenAPIV3Schema, strict).(map[string]any)
		schema["$schema"] = "http://json-schema.org/draft-04/schema#"
		if err := write(out, crd.Spec.Names.Kind, crd.Spec.Group, v.Name, schema); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no served version with a schema", path)
	}
	return n, nil
}

// write stores a schema where kubeconform's location template
// {{.ResourceKind}}{{.KindSuffix}}.json finds it: kind, the group's first
// label and the version, in lower case ("deployment-apps-v1.json",
// "service-v1.json").
func write(out, kind, group, version string, schema any) error {
	name := strings.ToLower(kind)
	if g, _, _ := strings.Cut(group, "."); g != "" {
		name += "-" + strings.ToLower(g)
	}
	name += "-" + strings.ToLower(version) + ".json"
	b, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, name), b, 0o644)
}

// convert rewrites an OpenAPI v3 schema as JSON schema (draft 4, as
// kubeconform compiles it).
func convert(v any, strict bool) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = convert(e, strict)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x)+1)
		for k, e := range x {
			switch k {
			case "$ref":
				s, _ := e.(string)
				out[k] = strings.Replace(s, "#/components/schemas/", "#/definitions/", 1)
			case "properties", "definitions", "patternProperties":
				// Maps of names to schemas: convert the schemas, keep the names.
				m, _ := e.(map[string]any)
				pm := make(map[string]any, len(m))
				for name, s := range m {
					pm[name] = convert(s, strict)
				}
				out[k] = pm
			case "default", "example", "enum":
				out[k] = e // values, not schemas
			default:
				out[k] = convert(e, strict)
			}
		}
		if x["format"] == "int-or-string" || x["x-kubernetes-int-or-string"] == true {
			if _, ok := x["anyOf"]; !ok {
				if _, ok := x["oneOf"]; !ok {
					delete(out, "type")
					out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
				}
			}
		}
		if x["nullable"] == true {
			if t, ok := x["type"].(string); ok {
				out["type"] = []any{t, "null"}
			}
		}
		_, hasProps := x["properties"]
		_, hasAdditional := x["additionalProperties"]
		if strict && hasProps && !hasAdditional && x["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	default:
		return v
	}
}
