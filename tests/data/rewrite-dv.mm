$( rewrite-dv.mm: a tiny predicate-calculus-like database with setvar
   variables and an ax-17-style axiom that needs $d, for the rewrite tests
   (tests/refactor/test_rewrite.py).  th1 and th2 both infer |- A. x ph from
   |- ph through ax-17 and modus ponens, which needs $d x ph. $)

  $c ( ) -> -. wff |- A. setvar $.
  $v ph ps ch x y $.
  wph $f wff ph $.
  wps $f wff ps $.
  wch $f wff ch $.
  vx $f setvar x $.
  vy $f setvar y $.

  wn $a wff -. ph $.
  wi $a wff ( ph -> ps ) $.
  wal $a wff A. x ph $.

  ${
    min $e |- ph $.
    maj $e |- ( ph -> ps ) $.
    $( Modus ponens. $)
    ax-mp $a |- ps $.
  $}

  ${
    $d x ph $.
    $( A wff without x does not depend on x. $)
    ax-17 $a |- ( ph -> A. x ph ) $.
  $}

  ${
    $d x ph $.
    $d x ps $.
    th1.1 $e |- ( ph -> ps ) $.
    $( Generalization of an implication without x. $)
    th1 $p |- A. x ( ph -> ps ) $=
      wph wps wi wph wps wi vx wal th1.1 wph wps wi vx ax-17 ax-mp $.
  $}

  ${
    $d y ph $.
    th2.1 $e |- -. ph $.
    $( Generalization of a negation without y. $)
    th2 $p |- A. y -. ph $=
      wph wn wph wn vy wal th2.1 wph wn vy ax-17 ax-mp $.
  $}
