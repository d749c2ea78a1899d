module crew/bench/peers/go

go 1.19
