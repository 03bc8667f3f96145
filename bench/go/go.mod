module fcgibench/hello

go 1.19
