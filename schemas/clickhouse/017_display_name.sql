-- How staff recognise a customer on the console: a masked name from the till (王女士, 欧阳先生,
-- 李*) where the check-in carried one; the full name is never stored. No DEFAULT: the sink
-- writes every column without one, so the worker must send it.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS display_name String AFTER member_no;
