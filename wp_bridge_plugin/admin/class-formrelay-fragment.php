<?php
/**
 * The sidecar's view fragments, filtered for printing in wp-admin.
 *
 * The dashboard page and the REST route view/{name} print the HTML the
 * sidecar renders only through wp_kses() with the markup the views use:
 * WordPress' post markup plus forms and SVG, no scripts, no event handlers,
 * no embedded media or objects.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The fragment filter and its allowed markup.
 */
final class FormRelay_Fragment {

	/**
	 * A view fragment from the sidecar, through wp_kses() with the dashboard's markup.
	 *
	 * @param string $html The fragment.
	 * @return string
	 */
	public static function filter( $html ) {
		return wp_kses( (string) $html, self::allowed_html() );
	}

	/**
	 * What a view may contain: WordPress' post markup plus forms and SVG,
	 * with the common attributes, aria-* and data-* on every element.
	 *
	 * @return array
	 */
	public static function allowed_html() {
		static $allowed = null;
		if ( null !== $allowed ) {
			return $allowed;
		}
		$global   = array(
			'class'            => true,
			'id'               => true,
			'style'            => true,
			'title'            => true,
			'role'             => true,
			'hidden'           => true,
			'lang'             => true,
			'dir'              => true,
			'tabindex'         => true,
			'aria-label'       => true,
			'aria-labelledby'  => true,
			'aria-describedby' => true,
			'aria-hidden'      => true,
			'aria-current'     => true,
			'aria-sort'        => true,
			'aria-expanded'    => true,
			'aria-controls'    => true,
			'aria-live'        => true,
			'aria-busy'        => true,
			'aria-disabled'    => true,
			'data-*'           => true,
		);
		$svg      = array(
			'fill'              => true,
			'stroke'            => true,
			'stroke-width'      => true,
			'stroke-dasharray'  => true,
			'stroke-linecap'    => true,
			'opacity'           => true,
			'fill-opacity'      => true,
			'transform'         => true,
			'font-size'         => true,
			'font-family'       => true,
			'text-anchor'       => true,
			'dominant-baseline' => true,
		);
		$extra    = array(
			'form'     => array(
				'action'     => true,
				'method'     => true,
				'name'       => true,
				'novalidate' => true,
			),
			'input'    => array(
				'type'         => true,
				'name'         => true,
				'value'        => true,
				'checked'      => true,
				'disabled'     => true,
				'readonly'     => true,
				'required'     => true,
				'placeholder'  => true,
				'min'          => true,
				'max'          => true,
				'step'         => true,
				'size'         => true,
				'maxlength'    => true,
				'pattern'      => true,
				'autocomplete' => true,
				'form'         => true,
			),
			'select'   => array(
				'name'     => true,
				'multiple' => true,
				'disabled' => true,
				'size'     => true,
				'form'     => true,
				'required' => true,
			),
			'option'   => array(
				'value'    => true,
				'selected' => true,
				'disabled' => true,
				'label'    => true,
			),
			'optgroup' => array(
				'label'    => true,
				'disabled' => true,
			),
			'button'   => array(
				'type'     => true,
				'name'     => true,
				'value'    => true,
				'disabled' => true,
				'form'     => true,
			),
			'label'    => array( 'for' => true ),
			'output'   => array( 'for' => true ),
			'time'     => array( 'datetime' => true ),
			'progress' => array(
				'value' => true,
				'max'   => true,
			),
			'meter'    => array(
				'value' => true,
				'min'   => true,
				'max'   => true,
				'low'   => true,
				'high'  => true,
			),
			'svg'      => array(
				'xmlns'               => true,
				'viewbox'             => true,
				'width'               => true,
				'height'              => true,
				'preserveaspectratio' => true,
				'focusable'           => true,
			),
			'g'        => array(),
			'title'    => array(),
			'desc'     => array(),
			'rect'     => array(
				'x'      => true,
				'y'      => true,
				'width'  => true,
				'height' => true,
				'rx'     => true,
				'ry'     => true,
			),
			'line'     => array(
				'x1' => true,
				'y1' => true,
				'x2' => true,
				'y2' => true,
			),
			'polyline' => array( 'points' => true ),
			'polygon'  => array( 'points' => true ),
			'path'     => array( 'd' => true ),
			'circle'   => array(
				'cx' => true,
				'cy' => true,
				'r'  => true,
			),
			'text'     => array(
				'x'  => true,
				'y'  => true,
				'dx' => true,
				'dy' => true,
			),
			'tspan'    => array(
				'x'  => true,
				'y'  => true,
				'dx' => true,
				'dy' => true,
			),
		);
		$svg_tags = array( 'svg', 'g', 'title', 'desc', 'rect', 'line', 'polyline', 'polygon', 'path', 'circle', 'text', 'tspan' );

		$allowed = wp_kses_allowed_html( 'post' );
		// No embedded media or objects in a status page.
		unset( $allowed['object'], $allowed['embed'], $allowed['audio'], $allowed['video'], $allowed['track'], $allowed['source'], $allowed['map'], $allowed['area'] );
		foreach ( $extra as $tag => $attributes ) {
			$base            = isset( $allowed[ $tag ] ) ? $allowed[ $tag ] : array();
			$allowed[ $tag ] = array_merge( $base, $attributes, in_array( $tag, $svg_tags, true ) ? $svg : array() );
		}
		foreach ( $allowed as $tag => $attributes ) {
			$allowed[ $tag ] = array_merge( is_array( $attributes ) ? $attributes : array(), $global );
		}
		return $allowed;
	}
}
