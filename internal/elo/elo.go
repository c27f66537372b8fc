// Package elo computes rating changes after a multi-player game (docs/fight.md "Ratings").
package elo

import "math"

// K is arena's Elo factor.
const K = 32

// Deltas returns each player's rating change after one multi-player game.
//
// ranks gives each player's placement (0 is best; equal ranks drew). Every
// pair of players is scored as one Elo game: the better-placed player scores
// 1, the other 0, equal placements 0.5 each, against the usual expectation
// 1/(1+10^((Rj-Ri)/400)). A player's change is the sum over its opponents,
// scaled by k/(n-1) so a two-player game is exactly classic Elo with factor
// k, and rounded to the nearest integer.
func Deltas(ratings, ranks []int, k float64) []int {
	n := len(ratings)
	out := make([]int, n)
	if n < 2 || len(ranks) != n {
		return out
	}
	scale := k / float64(n-1)
	for i := 0; i < n; i++ {
		sum := 0.0
		for j := 0; j < n; j++ {
			if i == j {
				continue
			}
			exp := 1 / (1 + math.Pow(10, float64(ratings[j]-ratings[i])/400))
			s := 0.5
			if ranks[i] < ranks[j] {
				s = 1
			} else if ranks[i] > ranks[j] {
				s = 0
			}
			sum += s - exp
		}
		out[i] = int(math.Round(scale * sum))
	}
	return out
}
