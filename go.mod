module github.com/kvserve/kvserve

go 1.26.0

require (
	github.com/dlclark/regexp2/v2 v2.13.0
	golang.org/x/sys v0.50.0
)

require github.com/ardanlabs/jinja v1.8.0 // indirect
