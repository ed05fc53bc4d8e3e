# Run by the real-program suite (tests/real_programs.rs) with perl, natively and under
# leakscope; its output must be the same.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use List::Util qw(sum max);

my %counts;
$counts{$_}++ for split / /, "the quick brown fox jumps over the lazy dog the end";
print join(",", map { "$_=$counts{$_}" } sort keys %counts), "\n";

my @objects;
for my $i (0 .. 199_999) {
    push @objects, { id => $i, name => "item-$i", tags => [ $i % 7, $i % 11 ] };
    @objects = () if @objects > 5000;
}
print "md5: ", md5_hex("leakscope"), "\n";
my @squares = map { $_ * $_ } 1 .. 1000;
print "sum ", sum(@squares), " max ", max(@squares), "\n";
my $text = "foo bar boz dog log";
my @pairs = $text =~ /(\w)o(\w)/g;
print "@pairs\n";
printf "%-8s|%08.3f|%x\n", "fmt", 3.14159, 48879;
my $s = join "", map { chr(97 + $_ % 26) } 0 .. 9999;
(my $t = $s) =~ s/([aeiou])/uc $1/ge;
print length($t), " ", substr($t, 0, 30), "\n";
