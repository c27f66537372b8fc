package dispatcher

// playRoutes registers the player flow: login, /v1/play, tickets, maps.
func (d *Dispatcher) playRoutes() {}
