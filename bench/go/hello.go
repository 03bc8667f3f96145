// Go's net/http/fcgi server for the benchmark: the same answers as every other benchmark
// server (the body read to its end, then "hello", or 1 MiB for /big...).
// Usage: hello tcp:HOST:PORT | unix:PATH
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strings"
)

var big = bytes.Repeat([]byte("x"), 1<<20)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hello tcp:HOST:PORT|unix:PATH")
		os.Exit(2)
	}
	arg := os.Args[1]
	var l net.Listener
	var err error
	if strings.HasPrefix(arg, "unix:") {
		path := strings.TrimPrefix(arg, "unix:")
		os.Remove(path)
		l, err = net.Listen("unix", path)
	} else {
		l, err = net.Listen("tcp", strings.TrimPrefix(arg, "tcp:"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		if strings.HasPrefix(r.URL.Path, "/big") || strings.Contains(r.RequestURI, "/big") {
			w.Write(big)
		} else {
			w.Write([]byte("hello"))
		}
	})
	if err := fcgi.Serve(l, handler); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
