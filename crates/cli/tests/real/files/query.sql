-- Run by sqlite3 in the real-program suite (tests/real_programs.rs), natively and under
-- leakscope; its output must be the same.
create table numbers (n integer primary key, square integer, name text);
with recursive seq(n) as (select 1 union all select n + 1 from seq where n < 5000)
insert into numbers select n, n * n, 'number ' || n from seq;
create index by_square on numbers (square % 97);
select count(*), sum(square), max(length(name)) from numbers;
select square % 97 as bucket, count(*) from numbers group by bucket order by 2 desc, 1 limit 5;
select n, name from numbers where n % 1000 = 0 order by n;
update numbers set name = upper(name) where n % 2 = 0;
delete from numbers where n > 4000;
select count(*), sum(length(name)) from numbers;
select group_concat(n, ',') from (select n from numbers order by n desc limit 10);
