-- ingest.sql for 10 messages per transaction: the same statements in multi-row form, locks
-- taken in id order. What a write combiner could reach on the database side; run as
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -f tests/bench/ceiling/ingest-batch10.sql DBNAME
-- and multiply its transactions/s by 10.
\set c0 random(1, 10000)
\set c1 random(1, 10000)
\set c2 random(1, 10000)
\set c3 random(1, 10000)
\set c4 random(1, 10000)
\set c5 random(1, 10000)
\set c6 random(1, 10000)
\set c7 random(1, 10000)
\set c8 random(1, 10000)
\set c9 random(1, 10000)
BEGIN;
SELECT * FROM contacts WHERE id IN (SELECT contact_id FROM contact_identities WHERE workspace_id = 1 AND kind = 'EMAIL' AND value IN ('contact' || (:c0 - 1) || '@example.com','contact' || (:c1 - 1) || '@example.com','contact' || (:c2 - 1) || '@example.com','contact' || (:c3 - 1) || '@example.com','contact' || (:c4 - 1) || '@example.com','contact' || (:c5 - 1) || '@example.com','contact' || (:c6 - 1) || '@example.com','contact' || (:c7 - 1) || '@example.com','contact' || (:c8 - 1) || '@example.com','contact' || (:c9 - 1) || '@example.com')) ORDER BY id FOR UPDATE;
SELECT * FROM conversations WHERE contact_id IN (:c0,:c1,:c2,:c3,:c4,:c5,:c6,:c7,:c8,:c9) ORDER BY id FOR UPDATE;
INSERT INTO messages (workspace_id, conversation_id, channel, direction, status, body, important, spam, created_at) SELECT 1, id, 'EMAIL', 'INBOUND', 'RECEIVED', 'Hello, any news on my order?', false, false, now() FROM conversations WHERE contact_id IN (:c0,:c1,:c2,:c3,:c4,:c5,:c6,:c7,:c8,:c9) RETURNING *;
UPDATE conversations SET unread_count = unread_count + 1, status = 'OPEN', updated_at = now(), last_message_at = now() WHERE contact_id IN (:c0,:c1,:c2,:c3,:c4,:c5,:c6,:c7,:c8,:c9);
UPDATE contacts SET inbound_count = inbound_count + 1, last_inbound_at = now(), last_activity_at = now(), updated_at = now() WHERE id IN (:c0,:c1,:c2,:c3,:c4,:c5,:c6,:c7,:c8,:c9) RETURNING *;
INSERT INTO activities (workspace_id, conversation_id, kind, actor_kind, actor_label, summary, data, occurred_at) SELECT 1, id, 'MESSAGE_RECEIVED', 'CONTACT', 'Contact', 'Email message received', '{"channel":"EMAIL"}', now() FROM conversations WHERE contact_id IN (:c0,:c1,:c2,:c3,:c4,:c5,:c6,:c7,:c8,:c9) RETURNING *;
SELECT workspace_id, id, events FROM plugins WHERE workspace_id IN (1) AND uninstalled_at IS NULL AND enabled;
END;
