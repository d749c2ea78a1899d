module crew/bench/peers/go-batch

go 1.19
