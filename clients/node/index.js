'use strict';
/* service-outbox for Node producers: put events into an outbox that outboxd
 * publishes, with the validation and the transactional path of liboutbox
 * (clients/node/README.md). */
const outbox = require('./lib/outbox');
const schema = require('./lib/schema');

module.exports = { ...outbox, Schema: schema.Schema, SchemaError: schema.SchemaError, bsonType: schema.bsonType };
