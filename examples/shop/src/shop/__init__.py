"""An online shop's background jobs: the examples of Pikku's Background Queues page."""
