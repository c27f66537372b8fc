package integration

import (
	"io"
	"net/http"
	"strings"
)

func ioCopy(w *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
