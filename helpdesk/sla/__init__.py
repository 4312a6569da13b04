"""Service levels: due times from priority, business hours, and the jobs that enforce them."""
