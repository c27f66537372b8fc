package dispatcher

// webRoutes registers the play page, the dashboard and their static files.
// (Filled in by the web package work.)
func (d *Dispatcher) webRoutes() {}
