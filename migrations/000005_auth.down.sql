DROP TABLE audit_events;
DROP TABLE login_codes;
DROP TABLE api_tokens;
