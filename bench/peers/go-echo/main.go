// go-echo: a TCP echo server in Go (a goroutine per connection echoes what it
// reads through a 16 KiB buffer), the Go peer of tools/echo-bench.sh.
// Workers: GOMAXPROCS.
package main

import (
	"flag"
	"fmt"
	"net"
)

func main() {
	port := flag.Int("port", 0, "TCP port (0: any free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		panic(err)
	}
	fmt.Printf("go-echo: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 16384)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(c)
	}
}
