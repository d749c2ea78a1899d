module crew/bench/peers/go-http

go 1.19
