package ddtool

import "time"

// processStart is as close to the process's start as Go code gets (package
// initialisation, before main): status=progress lines are due once a
// second from here, as dd's are from its start a millisecond after exec.
var processStart = time.Now()
