$( rewrite-prop.mm: a tiny propositional database for the rewrite tests
   (tests/refactor/test_rewrite.py).  th1 and th2 both contain the proof of
   a1i (from |- ph infer |- ( ps -> ph )) inline; id does not. $)

  $c ( ) -> -. wff |- $.
  $v ph ps ch th $.
  wph $f wff ph $.
  wps $f wff ps $.
  wch $f wff ch $.
  wth $f wff th $.

  $( Negation is a wff. $)
  wn $a wff -. ph $.

  $( Implication is a wff. $)
  wi $a wff ( ph -> ps ) $.

  $( Axiom Simp. $)
  ax-1 $a |- ( ph -> ( ps -> ph ) ) $.

  $( Axiom Frege. $)
  ax-2 $a |- ( ( ph -> ( ps -> ch ) ) -> ( ( ph -> ps ) -> ( ph -> ch ) ) ) $.

  ${
    min $e |- ph $.
    maj $e |- ( ph -> ps ) $.
    $( Modus ponens. $)
    ax-mp $a |- ps $.
  $}

  $( Identity, proved from ax-1 and ax-2 (no a1i pattern inside). $)
  id $p |- ( ph -> ph ) $=
    wph wph wph wi wi wph wph wi wph wph ax-1 wph wph wph wi wph wi wi
    wph wph wph wi wi wph wph wi wi wph wph wph wi ax-1 wph wph wph wi wph
    ax-2 ax-mp ax-mp $.

  ${
    th1.1 $e |- ph $.
    $( Two nested occurrences of the a1i pattern. $)
    th1 $p |- ( ps -> ( ch -> ph ) ) $=
      wch wph wi wps wch wph wi wi wph wch wph wi th1.1 wph wch ax-1 ax-mp
      wch wph wi wps ax-1 ax-mp $.
  $}

  ${
    th2.1 $e |- ( ph -> ps ) $.
    $( One occurrence of the a1i pattern. $)
    th2 $p |- ( ch -> ( ph -> ps ) ) $=
      wph wps wi wch wph wps wi wi th2.1 wph wps wi wch ax-1 ax-mp $.
  $}
