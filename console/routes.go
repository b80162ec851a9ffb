package console

import "github.com/labstack/echo/v4"

// addRoutes lists every route of the console, once. Pages are GETs;
// every change is a POST with the session's CSRF token.
func addRoutes(e *echo.Echo, c *Console) {
	e.GET("/console", handleIndex())
	e.GET("/console/", handleIndex())
	e.GET("/console/static/*", handleStatic())
	e.GET("/console/login", handleLoginPage(c))
	e.POST("/console/login", handleLogin(c))

	g := e.Group("/console", c.requireSession)
	g.POST("/logout", handleLogout(c))

	g.GET("/live", handleLive(c, c.cfg.Stats, c.cfg.Reads))
	g.GET("/logs", handleLogs(c, c.cfg.Log, c.cfg.Events))
	g.POST("/messages/delete", handleDeleteMessage(c.cfg.Core))

	g.GET("/users/:user", handleUser(c, c.cfg.Log, c.cfg.Events, c.cfg.Sanctions))
	g.POST("/users/:user/kick", handleKick(c.cfg.Core))
	g.POST("/users/:user/sanction", handleSanction(c.cfg.Core))
	g.POST("/users/:user/lift", handleLift(c.cfg.Core))

	g.GET("/ngwords", handleNGWords(c, c.cfg.NG))
	g.POST("/ngwords/add", handleNGAdd(c.cfg.Core))
	g.POST("/ngwords/remove", handleNGRemove(c.cfg.Core))
	g.POST("/ngwords/policy", handleNGPolicy(c.cfg.Core))

	g.GET("/channels", handleChannels(c, c.cfg.Channels, c.cfg.Reads))
	g.POST("/channels/create", handleCreateChannel(c.cfg.Core))
	g.POST("/channels/delete", handleDeleteChannel(c.cfg.Core))
}
