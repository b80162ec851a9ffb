module github.com/kaiwa-chat/kaiwa

go 1.26.0
