"""What the tests share: event builders, Kafka helpers, the one polling helper, the JSON
Schemas, the batch oracle and the hypothesis strategies. Test modules import from here,
never from one another."""
