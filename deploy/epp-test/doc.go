// Package epptest proves kvserve against the Gateway API Inference
// Extension's endpoint picker (EPP): its tests run a real `kvserve serve`
// with the arguments of deploy/kubernetes/deployment.yaml and read its
// /metrics with the EPP's own code (v1.5.0) — the configuration loader
// on deploy/kubernetes/epp-config.yaml, the metrics data source, the
// model server protocol extractor and the per-endpoint collector, and the
// older flag-configured scraper — while requests stream and while a
// POST /cache/requantize changes the cache's utilization.
//
// It is its own Go module so that kvserve's own module keeps its small
// dependency list: (cd deploy/epp-test && go test ./...).
package epptest
