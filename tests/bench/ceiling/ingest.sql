-- The statements one receiveMessage from a known contact runs on PostgreSQL, with nothing
-- around them: pgbench's rate for this transaction is the most any server built this way
-- gets on the machine. Run on a seeded database (workspace 1, contacts 1..10000):
--   pgbench -n -M prepared -c 32 -j 2 -T 20 -f tests/bench/ceiling/ingest.sql DBNAME
\set c random(1, 10000)
BEGIN;
SELECT * FROM contacts WHERE id IN (SELECT contact_id FROM contact_identities
  WHERE workspace_id = 1 AND kind = 'EMAIL' AND value = 'contact' || (:c - 1) || '@example.com') FOR UPDATE;
SELECT * FROM conversations WHERE contact_id = :c FOR UPDATE;
INSERT INTO messages (workspace_id, conversation_id, channel, direction, status, body, important, spam, created_at)
  SELECT 1, id, 'EMAIL', 'INBOUND', 'RECEIVED', 'Hello, any news on my order?', false, false, now()
  FROM conversations WHERE contact_id = :c RETURNING *;
UPDATE conversations SET unread_count = unread_count + 1, status = 'OPEN', updated_at = now(),
  last_message_at = now() WHERE contact_id = :c;
UPDATE contacts SET inbound_count = inbound_count + 1, last_inbound_at = now(), last_activity_at = now(),
  updated_at = now() WHERE id = :c RETURNING *;
INSERT INTO activities (workspace_id, conversation_id, kind, actor_kind, actor_label, summary, data, occurred_at)
  SELECT 1, id, 'MESSAGE_RECEIVED', 'CONTACT', 'Contact', 'Email message received', '{"channel":"EMAIL"}', now()
  FROM conversations WHERE contact_id = :c RETURNING *;
SELECT workspace_id, id, events FROM plugins WHERE workspace_id IN (1) AND uninstalled_at IS NULL AND enabled;
END;
