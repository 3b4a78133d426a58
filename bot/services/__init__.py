"""Application services: what the bot does with an event, in the product's own words."""
